package deps_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/build/deps"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// fakeInterpreters are enough to plan: Plan runs nothing.
var fakeInterpreters = runtime.Interpreters{
	runtime.Python: {Path: "/usr/bin/python3", Version: "3.11.2"},
	runtime.NodeJS: {Path: "/usr/bin/node", Version: "20.20.2"},
}

func planBuilder(t *testing.T, set func(*deps.Config)) *deps.Builder {
	t.Helper()
	cfg := deps.Config{Dir: t.TempDir(), Interpreters: fakeInterpreters}
	if set != nil {
		set(&cfg)
	}
	b, err := deps.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPlan: which code declares dependencies, from which files, and
// which is invalid.
func TestPlan(t *testing.T) {
	const pyproject = "[project]\nname = \"f\"\nversion = \"1\"\ndependencies = [\"requests>=2\", \"idna\"]\n"
	for _, tc := range []struct {
		name    string
		rt      string
		files   map[string]string
		ok      bool
		from    []string
		invalid bool
	}{
		{"python without dependency files", runtime.Python, map[string]string{"main.py": ""}, false, nil, false},
		{"requirements", runtime.Python, map[string]string{"requirements.txt": "requests==2.31\n"}, true, []string{"requirements.txt"}, false},
		{"requirements with only comments", runtime.Python, map[string]string{"requirements.txt": "# none\n\n"}, false, nil, false},
		{"pyproject", runtime.Python, map[string]string{"pyproject.toml": pyproject}, true, []string{"pyproject.toml"}, false},
		{"requirements win over pyproject", runtime.Python, map[string]string{"pyproject.toml": pyproject, "requirements.txt": "idna\n"}, true, []string{"requirements.txt"}, false},
		{"pyproject without dependencies", runtime.Python, map[string]string{"pyproject.toml": "[project]\nname = \"f\"\n"}, false, nil, false},
		{"pyproject of a tool", runtime.Python, map[string]string{"pyproject.toml": "[tool.black]\nline-length = 100\n"}, false, nil, false},
		{"pyproject not TOML", runtime.Python, map[string]string{"pyproject.toml": "[project\n"}, false, nil, true},
		{"pyproject dynamic dependencies", runtime.Python, map[string]string{"pyproject.toml": "[project]\nname = \"f\"\ndynamic = [\"dependencies\"]\n"}, false, nil, true},
		{"pyproject dependency as an option", runtime.Python, map[string]string{"pyproject.toml": "[project]\ndependencies = [\"--index-url=http://x\"]\n"}, false, nil, true},
		{"pyproject dependency of two lines", runtime.Python, map[string]string{"pyproject.toml": "[project]\ndependencies = [\"idna\\n-e .\"]\n"}, false, nil, true},
		{"package.json", runtime.NodeJS, map[string]string{"package.json": `{"dependencies": {"x": "1"}}`}, true, []string{"package.json"}, false},
		{"package.json with lock", runtime.NodeJS, map[string]string{"package.json": `{"dependencies": {"x": "1"}}`, "package-lock.json": "{}"}, true, []string{"package.json", "package-lock.json"}, false},
		{"package.json with shrinkwrap", runtime.NodeJS, map[string]string{"package.json": `{"optionalDependencies": {"x": "1"}}`, "npm-shrinkwrap.json": "{}"}, true, []string{"package.json", "npm-shrinkwrap.json"}, false},
		{"package.json of an ES module", runtime.NodeJS, map[string]string{"package.json": `{"type": "module"}`}, false, nil, false},
		{"package.json with dev dependencies only", runtime.NodeJS, map[string]string{"package.json": `{"devDependencies": {"x": "1"}}`}, false, nil, false},
		{"package.json not JSON", runtime.NodeJS, map[string]string{"package.json": `{`}, false, nil, true},
		{"package.json not an object", runtime.NodeJS, map[string]string{"package.json": `[]`}, false, nil, true},
		{"package.json dependencies not an object", runtime.NodeJS, map[string]string{"package.json": `{"dependencies": ["x"]}`}, false, nil, true},
		{"node ignores requirements", runtime.NodeJS, map[string]string{"requirements.txt": "idna\n"}, false, nil, false},
		{"unknown runtime", "cobol", map[string]string{"requirements.txt": "idna\n"}, false, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := planBuilder(t, nil)
			p, ok, err := b.Plan(tc.rt, srcDir(t, tc.files), false)
			if tc.invalid {
				if !errors.Is(err, fn.ErrInvalid) {
					t.Fatalf("Plan: %v, want fn.ErrInvalid", err)
				}
				return
			}
			if err != nil || ok != tc.ok {
				t.Fatalf("Plan = %v, %v; want %v", ok, err, tc.ok)
			}
			if ok && (!slices.Equal(p.Files, tc.from) || len(p.Key) != 64 || p.Runtime != tc.rt) {
				t.Errorf("plan %+v, want from %v", p, tc.from)
			}
		})
	}
}

// TestPlanKey: the key changes with everything the layer depends on, and
// only with that.
func TestPlanKey(t *testing.T) {
	key := func(t *testing.T, rt string, files map[string]string, scripts bool, set func(*deps.Config)) string {
		t.Helper()
		p, ok, err := planBuilder(t, set).Plan(rt, srcDir(t, files), scripts)
		if err != nil || !ok {
			t.Fatalf("Plan: %v, %v", ok, err)
		}
		return p.Key
	}
	req := map[string]string{"requirements.txt": "idna\n"}
	base := key(t, runtime.Python, req, false, nil)
	if k := key(t, runtime.Python, map[string]string{"requirements.txt": "idna\n", "main.py": "print(1)\n"}, false, nil); k != base {
		t.Error("a change of code that is no dependency file changed the key")
	}
	for name, k := range map[string]string{
		"requirements": key(t, runtime.Python, map[string]string{"requirements.txt": "idna==3\n"}, false, nil),
		"scripts":      key(t, runtime.Python, req, true, nil),
		"index":        key(t, runtime.Python, req, false, func(c *deps.Config) { c.PipIndexURL = "http://127.0.0.1:1/simple" }),
		"find links":   key(t, runtime.Python, req, false, func(c *deps.Config) { c.PipFindLinks = "/srv/wheels" }),
		"interpreter version": key(t, runtime.Python, req, false, func(c *deps.Config) {
			c.Interpreters = runtime.Interpreters{runtime.Python: {Path: "/usr/bin/python3", Version: "3.12.1"}}
		}),
	} {
		if k == base {
			t.Errorf("a change of %s kept the key", name)
		}
	}
	// pyproject.toml: its dependencies count, not the rest of it.
	pp := func(version string) map[string]string {
		return map[string]string{"pyproject.toml": "[project]\nname = \"f\"\nversion = \"" + version + "\"\ndependencies = [\"idna\"]\n"}
	}
	if key(t, runtime.Python, pp("1"), false, nil) != key(t, runtime.Python, pp("2"), false, nil) {
		t.Error("a change of pyproject.toml outside its dependencies changed the key")
	}
	pkg := map[string]string{"package.json": `{"dependencies": {"x": "1"}}`}
	nodeBase := key(t, runtime.NodeJS, pkg, false, nil)
	if nodeBase == key(t, runtime.NodeJS, pkg, false, func(c *deps.Config) { c.NpmRegistry = "http://127.0.0.1:1" }) {
		t.Error("a change of registry kept the key")
	}
	if nodeBase != key(t, runtime.NodeJS, pkg, false, func(c *deps.Config) { c.PipIndexURL = "http://127.0.0.1:1/simple" }) {
		t.Error("pip's index changed an npm build's key")
	}
}

// TestPlanFiles: dependency files are read inside the code only: a link
// out of it is refused, not followed.
func TestPlanFiles(t *testing.T) {
	b := planBuilder(t, nil)
	src := t.TempDir()
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("idna\n"), 0o600)
	if err := os.Symlink(secret, filepath.Join(src, "requirements.txt")); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := b.Plan(runtime.Python, src, false); err == nil || ok {
		t.Errorf("Plan followed a link out of the code: %v, %v", ok, err)
	}
	// A link inside the code is followed.
	src = srcDir(t, map[string]string{"reqs.txt": "idna\n"})
	os.Symlink("reqs.txt", filepath.Join(src, "requirements.txt"))
	if _, ok, err := b.Plan(runtime.Python, src, false); err != nil || !ok {
		t.Errorf("Plan of a link inside the code: %v, %v", ok, err)
	}
	// No interpreter: code with dependencies cannot be planned, code
	// without is fine.
	none, err := deps.New(deps.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := none.Plan(runtime.NodeJS, srcDir(t, map[string]string{"package.json": `{"dependencies": {"x": "1"}}`}), false); err == nil {
		t.Error("Plan without node succeeded")
	}
	if _, ok, err := none.Plan(runtime.NodeJS, srcDir(t, map[string]string{"index.js": ""}), false); err != nil || ok {
		t.Errorf("Plan without node of code without dependencies: %v, %v", ok, err)
	}
}

// TestPlanWheelsOnly: without install scripts, the requirements pip would
// build from source anyway (running the package's code) are refused when
// planned; with scripts, everything goes.
func TestPlanWheelsOnly(t *testing.T) {
	for _, tc := range []struct {
		name, reqs string
		refused    string // in the error; "" if accepted
	}{
		{"names and versions", "requests[socks]>=2.0,<3 ; python_version >= \"3.8\"\nidna==3.4 --hash=sha256:abc \\\n    --hash=sha256:def\n", ""},
		{"sources", "--index-url https://pypi.example/simple\n--extra-index-url=https://x.example/simple\n-f /srv/wheels\n--pre\nidna\n", ""},
		{"a wheel's URL", "demo @ https://files.example/demo-1.0-py3-none-any.whl#sha256=00 ; python_version > \"3\"\n", ""},
		{"a comment", "idna # not -e .\n# -e .\n", ""},
		{"no-binary", "idna\n--no-binary :all:\n", "requirements.txt line 2: option --no-binary"},
		{"no-binary continued", "idna \\\n  --no-binary=idna\n", "requirements.txt line 1: option --no-binary"},
		{"an sdist's URL", "demo @ https://files.example/demo-1.0.tar.gz\n", `line 1: "demo @ https://files.example/demo-1.0.tar.gz" is not a wheel's URL`},
		{"a bare sdist URL", "https://files.example/demo-1.0.zip\n", "is not a wheel's URL"},
		{"git", "demo @ git+https://git.example/demo.whl\n", "is not a wheel's URL"},
		{"a path", "./vendor/demo\n", "is not a wheel's URL"},
		{"editable", "-e .\n", "option -e"},
		{"another file", "-r https://evil.example/more.txt\n", "option -r"},
		{"constraints", "-c constraints.txt\n", "option -c"},
		{"a per-requirement option", "demo --config-settings=x=y\n", "option --config-settings"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := planBuilder(t, nil)
			src := srcDir(t, map[string]string{"requirements.txt": tc.reqs})
			_, ok, err := b.Plan(runtime.Python, src, false)
			if tc.refused == "" {
				if err != nil || !ok {
					t.Fatalf("Plan: %v, %v; want a plan", ok, err)
				}
				return
			}
			if !errors.Is(err, fn.ErrInvalid) || !strings.Contains(err.Error(), tc.refused) || !strings.Contains(err.Error(), "scripts") {
				t.Fatalf("Plan: %v; want it refused: %s, with the way out", err, tc.refused)
			}
			if _, ok, err := b.Plan(runtime.Python, src, true); err != nil || !ok {
				t.Errorf("Plan with scripts: %v, %v; want a plan", ok, err)
			}
		})
	}
	// pyproject.toml's dependencies likewise.
	b := planBuilder(t, nil)
	src := srcDir(t, map[string]string{"pyproject.toml": "[project]\ndependencies = [\"idna\", \"demo @ https://x.example/demo.tar.gz\"]\n"})
	if _, _, err := b.Plan(runtime.Python, src, false); err == nil || !strings.Contains(err.Error(), "pyproject.toml dependency 2") {
		t.Errorf("Plan: %v; want pyproject.toml's second dependency refused", err)
	}
}
