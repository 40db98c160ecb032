package cli_test

import (
	"strings"
	"testing"
	"time"
)

// TestSchedules: nimbus schedules lists every function's schedules (or
// one function's) with when each fires, what it runs and its next run.
func TestSchedules(t *testing.T) {
	s := startServer(t)
	c := newClient(t, s.url)
	c.write(map[string]string{"main.py": echoCode, "nimbus.yaml": `functions:
  - name: nightly
    runtime: python
    code: .
    schedules:
      - name: report
        cron: "0 3 * * *"
        timezone: Europe/Paris
        qualifier: $LATEST
      - name: off
        rate: 5m
        enabled: false
  - name: plain
    runtime: python
    code: .
`})
	c.ok("deploy")

	out := c.ok("schedules").stdout
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "FUNCTION") {
		t.Fatalf("nimbus schedules printed:\n%s", out)
	}
	for _, want := range []string{"nightly", "report", "0 3 * * *", "Europe/Paris", "$LATEST"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("the report row lacks %q: %s", want, lines[1])
		}
	}
	for _, want := range []string{"off", "every 5m", "disabled"} {
		if !strings.Contains(lines[2], want) {
			t.Errorf("the disabled row lacks %q: %s", want, lines[2])
		}
	}

	var got struct {
		Schedules []struct {
			Function, Name string
			NextRun        *time.Time
		}
	}
	decode(t, c.ok("schedules", "nightly", "-o", "json").stdout, &got)
	if len(got.Schedules) != 2 || got.Schedules[0].Function != "nightly" || got.Schedules[0].NextRun == nil {
		t.Fatalf("nimbus schedules nightly -o json: %+v", got)
	}
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	next := got.Schedules[0].NextRun.In(paris)
	if next.Hour() != 3 || next.Minute() != 0 || !next.After(time.Now()) || next.After(time.Now().Add(25*time.Hour)) {
		t.Errorf("next run %v, want the next 03:00 in Paris", next)
	}
	if got.Schedules[1].NextRun != nil {
		t.Errorf("a disabled schedule has a next run: %v", got.Schedules[1].NextRun)
	}

	if out := c.ok("schedules", "plain").stdout; strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("a function without schedules: %s", out)
	}
	if r := c.run("", "schedules", "nope"); r.code != 3 {
		t.Errorf("an unknown function: exit %d, want 3", r.code)
	}
}
