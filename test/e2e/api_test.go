package e2e_test

import (
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestAPIErrors(t *testing.T) {
	n := start(t, "NIMBUS_MAX_BODY_BYTES=65536")
	n.create(function{Name: "taken", Runtime: "python", Code: "def handler(e, c):\n    return e\n"})
	big := `{"name":"big","runtime":"python","code":"` + strings.Repeat("x", 70000) + `"}`
	cases := []struct {
		name, method, path string
		body               any
		status             int
		code, field, msg   string
	}{
		{"bad json", "POST", "/api/functions", `{"name":`, 400, "invalid", "body", ""},
		{"unknown field", "POST", "/api/functions", `{"name":"x","runtime":"python","code":"x=1","colour":"red"}`, 400, "invalid", "body", "colour"},
		{"bad name", "POST", "/api/functions", function{Name: "Bad Name", Runtime: "python", Code: "x=1"}, 400, "invalid", "name", ""},
		{"unknown runtime", "POST", "/api/functions", function{Name: "r", Runtime: "cobol", Code: "x"}, 400, "invalid", "runtime", "cobol"},
		{"unknown driver", "POST", "/api/functions", map[string]any{"name": "d", "runtime": "python", "code": "x=1", "driver": "vmware"}, 400, "invalid", "driver", "vmware"},
		{"python syntax error", "POST", "/api/functions", function{Name: "syn", Runtime: "python", Code: "def handler(e, c):\n    return (\n"}, 400, "invalid", "code", "main.py"},
		{"node syntax error", "POST", "/api/functions", function{Name: "syn", Runtime: "nodejs", Code: "exports.handler = async () => {\n  return 1 +;\n};\n"}, 400, "invalid", "code", "index.js"},
		{"duplicate name", "POST", "/api/functions", function{Name: "taken", Runtime: "python", Code: "x=1"}, 409, "conflict", "", "taken"},
		{"body too large", "POST", "/api/functions", big, 413, "too_large", "", ""},
		{"event too large", "POST", "/api/executions/taken", `{"x":"` + strings.Repeat("y", 70000) + `"}`, 413, "too_large", "", ""},
		{"event not json", "POST", "/api/executions/taken", `{nope`, 400, "invalid", "body", ""},
		{"unknown function", "POST", "/api/executions/nope", `{}`, 404, "not_found", "", ""},
		{"unknown function get", "GET", "/api/functions/nope", nil, 404, "not_found", "", ""},
		{"unknown execution", "GET", "/api/executions/taken/0123456789abcdef01234567", nil, 404, "not_found", "", ""},
		{"bad history status", "GET", "/api/executions/taken/history?status=meh", nil, 400, "invalid", "status", ""},
		{"bad history limit", "GET", "/api/executions/taken/history?limit=0", nil, 400, "invalid", "limit", ""},
		{"bad window", "GET", "/api/metrics/system?window=forever", nil, 400, "invalid", "window", ""},
		{"change id", "PUT", "/api/functions/taken", `{"id":"x"}`, 400, "invalid", "id", ""},
		{"unknown route", "GET", "/api/nothing", nil, 404, "not_found", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n.t = t
			var e apiError
			st := n.do(tc.method, tc.path, tc.body, &e)
			if st != tc.status || e.Error.Code != tc.code || e.Error.Field != tc.field || !strings.Contains(e.Error.Message, tc.msg) {
				t.Fatalf("got %d %+v; want %d %s field %q message containing %q", st, e.Error, tc.status, tc.code, tc.field, tc.msg)
			}
		})
	}
	n.t = t
	var list struct{ Functions []function }
	n.do("GET", "/api/functions", nil, &list)
	if len(list.Functions) != 1 {
		t.Fatalf("bad requests left functions behind: %+v", list.Functions)
	}
}

func TestFunctionLifecycle(t *testing.T) {
	n := start(t)
	f := n.create(function{Name: "life", Runtime: "python", Code: "def handler(e, c):\n    return 1\n"})
	if f.Revision != 1 || f.Handler != "main.handler" || f.Timeout != 30000 || f.Memory != 128 {
		t.Fatalf("created %+v", f)
	}
	if ex := n.invoke("life", nil); string(ex.Result) != "1" {
		t.Fatalf("v1 result %s", ex.Result)
	}
	var got function
	if st := n.do("GET", "/api/functions/"+f.ID, nil, &got); st != 200 || got.Files["main.py"] == "" {
		t.Fatalf("get by id: %d %+v", st, got)
	}
	// A PUT that changes code bumps the version and the next call runs it.
	if st := n.do("PUT", "/api/functions/life", map[string]any{"code": "def handler(e, c):\n    return 2\n", "env": map[string]string{"A": "b"}}, &got); st != 200 || got.Revision != 2 {
		t.Fatalf("update: %d %+v", st, got)
	}
	if ex := n.invoke("life", nil); string(ex.Result) != "2" || ex.Version != 0 || !ex.ColdStart {
		t.Fatalf("v2 call: result %s version %d cold %v", ex.Result, ex.Version, ex.ColdStart)
	}
	// A PUT that changes nothing keeps the version.
	if st := n.do("PUT", "/api/functions/life", map[string]any{"timeout": 30000}, &got); st != 200 || got.Revision != 2 {
		t.Fatalf("no-op update: %d version %d", st, got.Revision)
	}
	// A bad PUT changes nothing.
	var e apiError
	if st := n.do("PUT", "/api/functions/life", map[string]any{"code": "def handler(:\n"}, &e); st != 400 {
		t.Fatalf("bad update: %d", st)
	}
	if ex := n.invoke("life", nil); string(ex.Result) != "2" {
		t.Fatalf("after bad update: %s", ex.Result)
	}
	if st := n.do("DELETE", "/api/functions/life", nil, nil); st != http.StatusNoContent {
		t.Fatalf("delete: %d", st)
	}
	if st := n.do("POST", "/api/executions/life", "{}", &e); st != 404 {
		t.Fatalf("invoke after delete: %d", st)
	}
	if st := n.do("GET", "/api/executions/life/history", nil, &e); st != 404 {
		t.Fatalf("history after delete: %d", st)
	}
}

func TestAPIKey(t *testing.T) {
	n := start(t, "NIMBUS_API_KEY=s3cret")
	n.apiKey = ""
	var e apiError
	if st := n.do("GET", "/api/functions", nil, &e); st != http.StatusUnauthorized || e.Error.Code != "unauthorized" {
		t.Fatalf("without key: %d %+v", st, e)
	}
	n.apiKey = "wrong"
	if st := n.do("GET", "/api/functions", nil, &e); st != http.StatusUnauthorized {
		t.Fatalf("wrong key: %d", st)
	}
	n.apiKey = "s3cret"
	if st := n.do("GET", "/api/functions", nil, nil); st != 200 {
		t.Fatalf("right key: %d", st)
	}
	if resp, err := http.Get(n.url + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz needs no key: %v", err)
	}
}

func TestRefusesPublicBindWithoutKey(t *testing.T) {
	cmd := exec.Command(binary, "serve", "--host", "0.0.0.0", "--port", "0")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "NIMBUS_DATA_DIR=" + t.TempDir()}
	cmd.Dir = t.TempDir()
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("nimbus served on 0.0.0.0 without an API key")
	}
	if err == nil || !strings.Contains(string(out), "NIMBUS_API_KEY") {
		t.Fatalf("err %v, output %q", err, out)
	}
}
