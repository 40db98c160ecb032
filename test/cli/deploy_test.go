package cli_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/cli"
	"github.com/nimbusfaas/nimbus/internal/runtimeapi/runtimeapitest"
	"github.com/nimbusfaas/nimbus/internal/testenv"
)

const twoFunctions = `functions:
  - name: greet-py
    runtime: python
    handler: main.handler
    code: py
    memory: 128
    env:
      GREETING: "${GREETING}"
  - name: sum-js
    runtime: nodejs
    code: ./js
    timeout: 2000
    url:
      enabled: true
`

var twoFunctionsCode = map[string]string{
	"nimbus.yaml": twoFunctions,
	"py/main.py": `import os
def handler(event, context):
    return {"message": os.environ["GREETING"] + ", " + event.get("name", "world")}
`,
	"py/.nimbusignore": "*.log\ncache/\n",
	"py/debug.log":     "not deployed\n",
	"py/cache/x.txt":   "not deployed either\n",
	"js/index.js":      "exports.handler = async (e) => ({ sum: (e.a || 0) + (e.b || 0) });\n",
}

// fnInfo is what the tests read of a function from the API.
type fnInfo struct {
	Name     string            `json:"name"`
	Revision int               `json:"revision"`
	Env      map[string]string `json:"env"`
	Timeout  int               `json:"timeout"`
	CodeInfo struct {
		SHA256 string `json:"sha256"`
		Files  []struct {
			Path string `json:"path"`
		} `json:"files"`
	} `json:"codeInfo"`
}

func getFn(t *testing.T, s *server, name string) (fnInfo, int) {
	t.Helper()
	var f fnInfo
	code := getJSON(t, s.url+"/api/functions/"+name, &f)
	return f, code
}

// actions finds "created NAME", "updated NAME" ... lines in deploy's
// output: name → action.
func actions(out string) map[string]string {
	got := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^(created|updated|unchanged|deleted|create|update|delete)\s+(\S+)`).FindAllStringSubmatch(out, -1) {
		got[m[2]] = m[1]
	}
	return got
}

func wantActions(t *testing.T, step, out string, want map[string]string) {
	t.Helper()
	got := actions(out)
	if len(got) != len(want) {
		t.Errorf("%s: actions %v, want %v\noutput:\n%s", step, got, want, out)
		return
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s is %q, want %q\noutput:\n%s", step, k, got[k], v, out)
		}
	}
}

// A two-function spec is created, then left unchanged, then only the
// function whose file changed is updated; --dry-run changes nothing and
// --prune deletes what the spec does not name.
func TestDeploy(t *testing.T) {
	s := startServer(t)
	c := newClient(t, s.url)
	c.env = append(c.env, "GREETING=Hello")
	c.write(twoFunctionsCode)

	r := c.ok("deploy", "--dry-run")
	wantActions(t, "dry run before the first deploy", r.stdout, map[string]string{"greet-py": "create", "sum-js": "create"})
	if !strings.Contains(r.stdout, "dry run") {
		t.Errorf("the dry run does not say so:\n%s", r.stdout)
	}
	if _, code := getFn(t, s, "greet-py"); code != 404 {
		t.Fatalf("after --dry-run, GET greet-py = %d, want 404", code)
	}

	r = c.ok("deploy")
	wantActions(t, "first deploy", r.stdout, map[string]string{"greet-py": "created", "sum-js": "created"})
	if !strings.Contains(r.stdout, s.url+"/fn/sum-js") {
		t.Errorf("deploy does not print sum-js's URL:\n%s", r.stdout)
	}
	py, _ := getFn(t, s, "greet-py")
	js, _ := getFn(t, s, "sum-js")
	if py.Env["GREETING"] != "Hello" || js.Timeout != 2000 {
		t.Errorf("settings not applied: greet-py env %v, sum-js timeout %d", py.Env, js.Timeout)
	}
	var files []string
	for _, f := range py.CodeInfo.Files {
		files = append(files, f.Path)
	}
	if strings.Join(files, ",") != "main.py" {
		t.Errorf("greet-py's files are %v, want only main.py (.nimbusignore leaves out *.log and cache/; the ignore file itself stays home)", files)
	}

	if r := c.ok("deploy", "--quiet"); r.stdout != "" || r.stderr != "" {
		t.Errorf("deploy --quiet printed %q %q", r.stdout, r.stderr)
	}
	r = c.ok("deploy")
	wantActions(t, "second deploy", r.stdout, map[string]string{"greet-py": "unchanged", "sum-js": "unchanged"})
	if py2, _ := getFn(t, s, "greet-py"); py2.Revision != py.Revision {
		t.Errorf("an unchanged deploy moved greet-py from revision %d to %d", py.Revision, py2.Revision)
	}

	c.write(map[string]string{"py/main.py": "def handler(event, context):\n    return {\"v\": 2}\n"})
	r = c.ok("deploy")
	wantActions(t, "after a file changed", r.stdout, map[string]string{"greet-py": "updated", "sum-js": "unchanged"})
	if !strings.Contains(r.stdout, "updated   greet-py") {
		t.Errorf("output:\n%s", r.stdout)
	}
	if py2, _ := getFn(t, s, "greet-py"); py2.Revision <= py.Revision || py2.CodeInfo.SHA256 == py.CodeInfo.SHA256 {
		t.Errorf("greet-py not updated: revision %d → %d, sha %s → %s", py.Revision, py2.Revision, py.CodeInfo.SHA256, py2.CodeInfo.SHA256)
	}
	if js2, _ := getFn(t, s, "sum-js"); js2.Revision != js.Revision {
		t.Errorf("sum-js changed (revision %d → %d) though its code and settings did not", js.Revision, js2.Revision)
	}

	// A setting only: the update names it.
	c.env = append(c.env, "GREETING=Hi")
	r = c.ok("deploy", "--dry-run")
	if !strings.Contains(r.stdout, "update    greet-py (env)") {
		t.Errorf("dry run of an env change:\n%s", r.stdout)
	}
	c.ok("deploy")
	if py3, _ := getFn(t, s, "greet-py"); py3.Env["GREETING"] != "Hi" {
		t.Errorf("env not updated: %v", py3.Env)
	}

	// A function the spec does not name: kept without --prune, listed
	// and kept by a dry run, deleted with --prune.
	c.write(map[string]string{
		"extra/nimbus.yaml": "functions:\n  - name: extra\n    runtime: python\n",
		"extra/main.py":     "def handler(event, context):\n    return 1\n",
	})
	wantActions(t, "deploy of a FILE", c.ok("deploy", filepath.Join("extra", "nimbus.yaml")).stdout, map[string]string{"extra": "created"})
	wantActions(t, "deploy without --prune", c.ok("deploy").stdout, map[string]string{"greet-py": "unchanged", "sum-js": "unchanged"})
	wantActions(t, "dry run with --prune", c.ok("deploy", "--dry-run", "--prune").stdout, map[string]string{"greet-py": "unchanged", "sum-js": "unchanged", "extra": "delete"})
	if _, code := getFn(t, s, "extra"); code != 200 {
		t.Fatalf("a dry run deleted extra: GET = %d", code)
	}
	wantActions(t, "deploy --prune", c.ok("deploy", "--prune").stdout, map[string]string{"greet-py": "unchanged", "sum-js": "unchanged", "extra": "deleted"})
	if _, code := getFn(t, s, "extra"); code != 404 {
		t.Errorf("after --prune, GET extra = %d, want 404", code)
	}
}

// The plan as JSON, for scripts.
func TestDeployDryRunJSON(t *testing.T) {
	s := startServer(t)
	c := newClient(t, s.url)
	c.env = append(c.env, "GREETING=Hello")
	c.write(twoFunctionsCode)
	var plan []struct {
		Name, Action, URL string
	}
	r := c.ok("deploy", "--dry-run", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &plan); err != nil || len(plan) != 2 {
		t.Fatalf("plan %q: %v", r.stdout, err)
	}
	if plan[0].Name != "greet-py" || plan[0].Action != "create" || plan[1].URL != s.url+"/fn/sum-js" {
		t.Errorf("plan %+v", plan)
	}
}

// A spec that cannot be applied is refused before anything changes, with
// exit status 1 and the reason.
func TestDeployRefusesABadSpec(t *testing.T) {
	s := startServer(t)
	for _, tc := range []struct {
		name, spec, want string
	}{
		{"unset variable", twoFunctions, "${GREETING} is not set"},
		{"unknown field", "functions:\n  - name: a\n    runtime: python\n    memroy: 128\n", "unknown field memroy"},
		{"no runtime", "functions:\n  - name: a\n", "runtime: is required"},
		{"no functions", "functions: []\n", "no functions"},
		{"twice", "functions:\n  - {name: a, runtime: python}\n  - {name: a, runtime: python}\n", "named twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, s.url)
			c.write(twoFunctionsCode)
			c.write(map[string]string{"nimbus.yaml": tc.spec})
			r := c.run("", "deploy")
			if r.code != 1 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", r.code, r.stderr, tc.want)
			}
		})
	}
	var list struct{ Functions []any }
	getJSON(t, s.url+"/api/functions", &list)
	if len(list.Functions) != 0 {
		t.Errorf("a refused spec created %d functions", len(list.Functions))
	}
}

// init writes a function directory that deploys and answers as is, in
// each runtime: the README's walkthrough.
func TestInitDeployInvoke(t *testing.T) {
	// Go functions build at deploy; here from the vendored modules, with
	// no proxy: tests reach nothing beyond loopback.
	s := startServer(t, "NIMBUS_GOPROXY=off")
	for _, rt := range []string{"python", "nodejs", "go"} {
		t.Run(rt, func(t *testing.T) {
			c := newClient(t, s.url)
			name := "hello-" + rt
			c.ok("init", name, "--runtime", rt)
			if _, err := os.Stat(filepath.Join(c.dir, name, "nimbus.yaml")); err != nil {
				t.Fatal(err)
			}
			c.dir = filepath.Join(c.dir, name)
			if rt == "go" {
				vendorModules(t, c.dir)
			}
			wantActions(t, "deploy", c.ok("deploy").stdout, map[string]string{name: "created"})
			r := c.ok("invoke", name, "-d", "@event.json")
			if strings.TrimSpace(r.stdout) != `{"message":"Hello, Ada!"}` {
				t.Errorf("invoke printed %q", r.stdout)
			}
			if r := c.run("", "init", name, "--runtime", rt, "--dir", "."); r.code == 0 {
				t.Errorf("init over a directory with a spec succeeded: %s", r.stdout)
			}
		})
	}
}

// vendorModules vendors a Go function's modules from this machine's
// module cache (the repository requires aws-lambda-go, so it is there),
// as a user without a module proxy at deploy would.
func vendorModules(t *testing.T, dir string) {
	t.Helper()
	gocmd, err := runtimeapitest.GoCommand()
	testenv.Require(t, "the go toolchain", err)
	modcache, err := exec.Command(gocmd, "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(gocmd, "mod", "vendor")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOSUMDB=off", "GOTOOLCHAIN=local",
		"GOMODCACHE="+strings.TrimSpace(string(modcache)))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go mod vendor (the template's %s must be the version this repository requires): %v: %s", cli.LambdaGo, err, out)
	}
}
