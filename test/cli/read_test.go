package cli_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// Every read command's -o json is the API's JSON, and -o yaml the same
// document; the table names what it lists.
func TestReadCommands(t *testing.T) {
	s := startServer(t)
	c := deployEcho(t, s)
	c.ok("invoke", "echo", "-d", `{"x": 1}`)
	c.run(`{"fail": true}`, "invoke", "echo", "-d", "-")

	var list struct {
		Functions []struct{ Name string } `json:"functions"`
	}
	decode(t, c.ok("fn", "list", "-o", "json").stdout, &list)
	if len(list.Functions) != 1 || list.Functions[0].Name != "echo" {
		t.Errorf("fn list -o json: %+v", list)
	}
	var f struct {
		Name     string                  `json:"name"`
		CodeInfo struct{ SHA256 string } `json:"codeInfo"`
	}
	decode(t, c.ok("fn", "get", "echo", "-o", "json").stdout, &f)
	if f.Name != "echo" || f.CodeInfo.SHA256 == "" {
		t.Errorf("fn get -o json: %+v", f)
	}
	var execs struct {
		Executions []struct {
			ExecutionID string `json:"executionId"`
			Status      string `json:"status"`
		} `json:"executions"`
	}
	decode(t, c.ok("executions", "echo", "-o", "json").stdout, &execs)
	if len(execs.Executions) != 2 || execs.Executions[0].Status != "error" || execs.Executions[1].Status != "success" {
		t.Fatalf("executions -o json: %+v", execs)
	}
	decode(t, c.ok("executions", "echo", "--status", "success", "--limit", "5", "-o", "json").stdout, &execs)
	if len(execs.Executions) != 1 || execs.Executions[0].Status != "success" {
		t.Errorf("executions --status success: %+v", execs)
	}
	id := execs.Executions[0].ExecutionID
	var ex struct {
		ExecutionID string          `json:"executionId"`
		Event       json.RawMessage `json:"event"`
		Logs        string          `json:"logs"`
	}
	decode(t, c.ok("execution", "echo", id, "-o", "json").stdout, &ex)
	if ex.ExecutionID != id || !strings.Contains(string(ex.Event), `"x"`) || !strings.Contains(ex.Logs, "got ['x']") {
		t.Errorf("execution -o json: %+v", ex)
	}

	// yaml: the same documents.
	var y map[string]any
	for _, args := range [][]string{{"fn", "list"}, {"fn", "get", "echo"}, {"executions", "echo"}, {"execution", "echo", id}} {
		out := c.ok(append(args, "-o", "yaml")...).stdout
		if err := yaml.Unmarshal([]byte(out), &y); err != nil || len(y) == 0 {
			t.Errorf("%v -o yaml: %v\n%s", args, err, out)
		}
	}
	if y["executionId"] != id {
		t.Errorf("execution -o yaml: executionId %v, want %s", y["executionId"], id)
	}

	// Tables.
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"fn", "list"}, []string{"NAME", "echo", "python"}},
		{[]string{"fn", "get", "echo"}, []string{"Handler:", "main.handler", "sha256"}},
		{[]string{"executions", "echo"}, []string{"STATUS", "success", "error", id}},
		{[]string{"execution", "echo", id}, []string{"Status:", "success", "Event:", `"x"`, "Logs:", "got ['x']"}},
	} {
		out := c.ok(tc.args...).stdout
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: output lacks %q:\n%s", tc.args, w, out)
			}
		}
		if strings.Contains(out, "\x1b[") {
			t.Errorf("%v: colours when standard output is not a terminal:\n%q", tc.args, out)
		}
	}

	// Not found, and a bad format.
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"fn", "get", "nope"}, 3},
		{[]string{"executions", "nope"}, 3},
		{[]string{"execution", "echo", "000000000000000000000000"}, 3},
		{[]string{"fn", "list", "-o", "xml"}, 2},
		{[]string{"fn", "get"}, 2},
	} {
		if r := c.run("", tc.args...); r.code != tc.code {
			t.Errorf("%v: exit status %d, want %d\n%s", tc.args, r.code, tc.code, r.stderr)
		}
	}

	// fn code: the zip, to a file.
	c.ok("fn", "code", "echo", "-o", "echo.zip")
	b, err := os.ReadFile(filepath.Join(c.dir, "echo.zip"))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil || len(zr.File) != 1 || zr.File[0].Name != "main.py" {
		t.Fatalf("fn code: %v %v", err, zr)
	}

	// fn delete, then it is gone.
	c.ok("fn", "delete", "echo")
	if r := c.run("", "fn", "get", "echo"); r.code != 3 {
		t.Errorf("after fn delete, fn get exits %d, want 3", r.code)
	}
}

func decode(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
}
