package cli_test

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestMetricsAndTop(t *testing.T) {
	s := startServer(t)
	c := deployEcho(t, s)
	for range 3 {
		c.ok("invoke", "echo")
	}
	if r := c.run("", "invoke", "echo", "-d", `{"fail": true}`); r.code != 4 {
		t.Fatalf("failing call: exit %d", r.code)
	}

	one := c.ok("metrics", "echo", "--window", "1h")
	for _, want := range []string{"echo", "last 1h", "Calls:", "4 (", "Errors:", "1 (25.0%)", "p95"} {
		if !strings.Contains(one.stdout, want) {
			t.Errorf("nimbus metrics echo lacks %q:\n%s", want, one.stdout)
		}
	}
	if !strings.ContainsAny(one.stdout, "▁▂▃▄▅▆▇█") {
		t.Errorf("no sparkline in:\n%s", one.stdout)
	}

	var fm struct {
		Name        string `json:"name"`
		Invocations int    `json:"invocations"`
		Series      []struct {
			Invocations int `json:"invocations"`
		} `json:"series"`
	}
	if err := json.Unmarshal([]byte(c.ok("metrics", "echo", "-o", "json").stdout), &fm); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, p := range fm.Series {
		total += p.Invocations
	}
	if fm.Name != "echo" || fm.Invocations != 4 || len(fm.Series) < 2 || total != 4 {
		t.Fatalf("metrics echo -o json: %+v", fm)
	}

	var all struct {
		System struct {
			Invocations int `json:"invocations"`
		} `json:"system"`
		Functions []struct {
			Name string `json:"name"`
		} `json:"functions"`
	}
	if err := json.Unmarshal([]byte(c.ok("metrics", "-o", "json").stdout), &all); err != nil {
		t.Fatal(err)
	}
	if all.System.Invocations != 4 || len(all.Functions) != 1 || all.Functions[0].Name != "echo" {
		t.Fatalf("metrics -o json: %+v", all)
	}
	if y := c.ok("metrics", "echo", "-o", "yaml").stdout; !strings.Contains(y, "name: echo") {
		t.Fatalf("metrics -o yaml:\n%s", y)
	}
	sys := c.ok("metrics")
	if !strings.Contains(sys.stdout, "System") || !strings.Contains(sys.stdout, "NAME") || !strings.Contains(sys.stdout, "echo") {
		t.Fatalf("nimbus metrics:\n%s", sys.stdout)
	}

	// Not on a terminal, top prints one table and exits.
	top := c.ok("top", "--window", "1h")
	if strings.Contains(top.stdout, "\x1b[") {
		t.Errorf("top wrote escape codes to a pipe: %q", top.stdout)
	}
	var row []string
	for _, l := range strings.Split(top.stdout, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == "echo" {
			row = f
		}
	}
	// NAME CALLS/S CALLS ERRORS P50 P95 INSTANCES BUSY TREND
	if len(row) < 8 || row[2] != "4" || row[3] != "1" {
		t.Fatalf("top's row of echo %q in:\n%s", row, top.stdout)
	}

	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"metrics", "nope"}, 3},
		{[]string{"metrics", "echo", "--window", "0s"}, 2},
		{[]string{"metrics", "a", "b"}, 2},
		{[]string{"top", "extra"}, 2},
	} {
		if r := c.run("", tc.args...); r.code != tc.code {
			t.Errorf("nimbus %v: exit %d, want %d (%s)", tc.args, r.code, tc.code, r.stderr)
		}
	}
}
