package e2e_test

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/build/deps/depstest"
	"github.com/nimbusfaas/nimbus/internal/driver/microvm"
)

// Functions with dependencies, as a user writes them: the handler imports
// a package that requirements.txt or package.json names.
const (
	pyDeps = "import nimbusdemo, sys\n" +
		"def handler(event, context):\n" +
		"    leak = True\n" +
		"    try:\n" +
		"        import nimbus_host_only\n" +
		"    except ImportError:\n" +
		"        leak = False\n" +
		"    return {'answer': nimbusdemo.answer(), 'hostLeak': leak}\n"
	jsDeps = "const a = require('nimbus-answer');\n" +
		"exports.handler = async () => ({ answer: a.answer() });\n"
	jsPackage = `{"name": "fn", "version": "1.0.0", "private": true, "dependencies": {"nimbus-answer": "^1.0.0"}}`
)

// buildStatus is a function's buildStatus as the API shows it.
type buildStatus struct {
	State  string `json:"state"`
	Layer  string `json:"layer"`
	Cached bool   `json:"cached"`
	Error  string `json:"error"`
	Log    string `json:"log"`
}

type built struct {
	ID          string       `json:"id"`
	BuildStatus *buildStatus `json:"buildStatus"`
	CodeInfo    *struct {
		SHA256 string `json:"sha256"`
	} `json:"codeInfo"`
}

// createBuilt creates f (a map as the API takes it) and returns the
// function as answered, with its status.
func (n *nimbus) createBuilt(f map[string]any) (built, int) {
	n.t.Helper()
	var got built
	st := n.do("POST", "/api/functions", f, &got)
	return got, st
}

// answer invokes a dependency function and returns its answer.
func answer(t *testing.T, n *nimbus, name string) float64 {
	t.Helper()
	ex := n.invoke(name, map[string]any{})
	var r struct {
		Answer   float64 `json:"answer"`
		HostLeak bool    `json:"hostLeak"`
	}
	ex.decode(t, &r)
	if ex.Status != "success" {
		t.Fatalf("%s: %s %+v %s", name, ex.Status, ex.Error, ex.Logs)
	}
	if r.HostLeak {
		t.Errorf("%s imported a package installed only on the host", name)
	}
	return r.Answer
}

// installHostOnly puts a module into the site-packages of the Python
// Nimbus runs, where no function may see it, until the test ends.
func installHostOnly(t *testing.T) {
	t.Helper()
	dir := depstest.PurelibDir(t)
	p := dir + "/nimbus_host_only.py"
	if err := os.WriteFile(p, []byte("X = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(p) })
}

// testDependencies deploys a Python and a Node function with dependencies
// from a local wheel directory and a loopback npm registry under driver,
// and checks they run with them, built once, and without the host's
// packages.
func testDependencies(t *testing.T, n *nimbus, driver string, reg *depstest.Registry) {
	py := map[string]any{"name": "py-deps-" + driver, "runtime": "python", "driver": driver, "timeout": 60000,
		"files": map[string]string{"main.py": pyDeps, "requirements.txt": "nimbusdemo==1.0\n"}}
	got, st := n.createBuilt(py)
	if st != http.StatusCreated || got.BuildStatus == nil || got.BuildStatus.State != "ready" || got.BuildStatus.Layer == "" {
		t.Fatalf("create %s: %d %+v", py["name"], st, got.BuildStatus)
	}
	if a := answer(t, n, "py-deps-"+driver); a != 42 {
		t.Fatalf("python answer %v, want 42", a)
	}
	before := reg.Requests()
	js := map[string]any{"name": "js-deps-" + driver, "runtime": "nodejs", "driver": driver, "timeout": 60000,
		"files": map[string]string{"index.js": jsDeps, "package.json": jsPackage}}
	if got, st = n.createBuilt(js); st != http.StatusCreated || got.BuildStatus == nil || got.BuildStatus.State != "ready" {
		t.Fatalf("create %s: %d %+v", js["name"], st, got.BuildStatus)
	}
	if a := answer(t, n, "js-deps-"+driver); a != 42 {
		t.Fatalf("node answer %v, want 42", a)
	}
	if driver == "sandbox" && reg.Requests() == before {
		t.Errorf("the npm registry saw no request: where did nimbus-answer come from?")
	}
}

// TestDependenciesUnderEveryDriver: requirements.txt and package.json are
// built at deploy into a layer every driver mounts, the same build serves
// a second function (a cache hit builds nothing), and a package installed
// on the host is importable by no function.
func TestDependenciesUnderEveryDriver(t *testing.T) {
	wheels := depstest.Wheels(t)
	reg := depstest.NewRegistry(t, depstest.AnswerPackage(t, "/usr/bin/node"))
	installHostOnly(t)
	env := []string{"NIMBUS_PIP_FIND_LINKS=" + wheels, "NIMBUS_NPM_REGISTRY=" + reg.URL}

	t.Run("sandbox", func(t *testing.T) {
		n := start(t, env...)
		testDependencies(t, n, "sandbox", reg)
		// The same requirements again: the layer is shared, nothing built.
		requests := reg.Requests()
		again := map[string]any{"name": "py-again", "runtime": "python",
			"files": map[string]string{"main.py": pyDeps + "# another function\n", "requirements.txt": "nimbusdemo==1.0\n"}}
		got, st := n.createBuilt(again)
		if st != http.StatusCreated || got.BuildStatus == nil || !got.BuildStatus.Cached || got.BuildStatus.State != "ready" {
			t.Fatalf("second function with the same requirements: %d %+v, want a cached build", st, got.BuildStatus)
		}
		jsAgain := map[string]any{"name": "js-again", "runtime": "nodejs",
			"files": map[string]string{"index.js": jsDeps + "// another\n", "package.json": jsPackage}}
		if got, st = n.createBuilt(jsAgain); st != http.StatusCreated || got.BuildStatus == nil || !got.BuildStatus.Cached {
			t.Fatalf("second node function: %d %+v, want a cached build", st, got.BuildStatus)
		}
		if reg.Requests() != requests {
			t.Errorf("a cached build asked the registry %d times", reg.Requests()-requests)
		}
		if a := answer(t, n, "py-again"); a != 42 {
			t.Fatalf("answer %v", a)
		}
	})
	t.Run("docker", func(t *testing.T) {
		requireDocker(t)
		n := start(t, append(env, dockerEnv()...)...)
		testDependencies(t, n, "docker", reg)
	})
	t.Run("microvm", func(t *testing.T) {
		n := start(t, append(env, "NIMBUS_MICROVM_DIR="+microvm.DefaultDir(os.LookupEnv, ""))...)
		requireMicroVM(t, n)
		testDependencies(t, n, "microvm", reg)
	})
}

// TestFailedBuilds: a function whose first build fails exists, says why,
// and refuses calls naming the build; a failed rebuild answers 422 and
// leaves the last good code serving.
func TestFailedBuilds(t *testing.T) {
	n := start(t, "NIMBUS_PIP_FIND_LINKS="+depstest.Wheels(t))
	bad := map[string]any{"name": "broken", "runtime": "python",
		"files": map[string]string{"main.py": pyDeps, "requirements.txt": "nimbusmissing==9.9\n"}}
	got, st := n.createBuilt(bad)
	if st != http.StatusCreated || got.BuildStatus == nil || got.BuildStatus.State != "failed" ||
		!strings.Contains(got.BuildStatus.Log+got.BuildStatus.Error, "nimbusmissing") {
		t.Fatalf("create with a bad requirement: %d %+v", st, got.BuildStatus)
	}
	var e apiError
	if st := n.do("POST", "/api/executions/broken", map[string]any{}, &e); st != http.StatusConflict || !strings.Contains(e.Error.Message, "build") {
		t.Fatalf("invoke of a function that never built: %d %+v", st, e)
	}

	good := map[string]any{"name": "good", "runtime": "python",
		"files": map[string]string{"main.py": pyDeps, "requirements.txt": "nimbusdemo==1.0\n"}}
	first, st := n.createBuilt(good)
	if st != http.StatusCreated || first.BuildStatus.State != "ready" {
		t.Fatalf("create good: %d %+v", st, first.BuildStatus)
	}
	if a := answer(t, n, "good"); a != 42 {
		t.Fatalf("answer %v", a)
	}
	patch := map[string]any{"files": map[string]string{"main.py": "def handler(e, c):\n    return {'answer': 0}\n", "requirements.txt": "nimbusmissing==9.9\n"}}
	if st := n.do("PUT", "/api/functions/good", patch, &e); st != http.StatusUnprocessableEntity || e.Error.Code != "build_failed" {
		t.Fatalf("update with a bad requirement: %d %+v, want 422 build_failed", st, e)
	}
	var now built
	n.do("GET", "/api/functions/good", nil, &now)
	if now.CodeInfo == nil || now.CodeInfo.SHA256 != first.CodeInfo.SHA256 || now.BuildStatus.State != "failed" || now.BuildStatus.Log == "" {
		t.Fatalf("after the failed rebuild: code %+v status %+v", now.CodeInfo, now.BuildStatus)
	}
	if a := answer(t, n, "good"); a != 42 {
		t.Fatalf("the last good code no longer serves: answer %v", a)
	}
}

// TestBinaryCodeRuns: an archive with a file of every byte value and an
// executable script runs; the handler reads the bytes the archive held.
func TestBinaryCodeRuns(t *testing.T) {
	n := start(t)
	var all []byte
	for i := range 256 {
		all = append(all, byte(i))
	}
	sum := sha256.Sum256(all)
	for _, rt := range []struct{ runtime, file, code string }{
		{"python", "main.py", "import hashlib, os\ndef handler(e, c):\n    return {'sha': hashlib.sha256(open('data.bin','rb').read()).hexdigest(), 'exec': os.access('run.sh', os.X_OK)}\n"},
		{"nodejs", "index.js", "const fs = require('fs'), crypto = require('crypto');\nexports.handler = async () => {\n  let x = true; try { fs.accessSync('run.sh', fs.constants.X_OK); } catch { x = false; }\n  return { sha: crypto.createHash('sha256').update(fs.readFileSync('data.bin')).digest('hex'), exec: x };\n};\n"},
	} {
		zip := zipArchive(t, map[string]string{rt.file: rt.code, "data.bin": string(all), "run.sh": "#!/bin/sh\necho hi\n"}, "run.sh")
		f := map[string]any{"name": "bin-" + rt.runtime, "runtime": rt.runtime, "zipFile": zip}
		if _, st := n.createBuilt(f); st != http.StatusCreated {
			t.Fatalf("create %s: %d", rt.runtime, st)
		}
		ex := n.invoke("bin-"+rt.runtime, map[string]any{})
		var r struct {
			SHA  string `json:"sha"`
			Exec bool   `json:"exec"`
		}
		ex.decode(t, &r)
		if r.SHA != hex.EncodeToString(sum[:]) || !r.Exec {
			t.Errorf("%s read %+v, want sha %x and run.sh executable", rt.runtime, r, sum)
		}
	}
}

// zipArchive zips files, the executables among them with mode 0755.
func zipArchive(t *testing.T, files map[string]string, executables ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for name, body := range files {
		h := &zip.FileHeader{Name: name, Method: zip.Deflate}
		h.SetMode(0o644)
		if slices.Contains(executables, name) {
			h.SetMode(0o755)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(body))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestUploadedLayerRuns: a layer uploaded in Lambda's layout is found by
// the Python and Node functions that name it.
func TestUploadedLayerRuns(t *testing.T) {
	n := start(t)
	layer := zipArchive(t, map[string]string{
		"python/layerlib/__init__.py":           "V = 7\n",
		"nodejs/node_modules/layerlib/index.js": "exports.V = 7;\n",
	})
	req, _ := http.NewRequest("POST", n.url+"/api/layers", bytes.NewReader(layer))
	req.Header.Set("Content-Type", "application/zip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var l struct{ ID string }
	json.NewDecoder(resp.Body).Decode(&l)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || len(l.ID) != 64 {
		t.Fatalf("POST /api/layers: %d %+v", resp.StatusCode, l)
	}
	for rt, code := range map[string]string{
		"python": "import layerlib\ndef handler(e, c):\n    return {'answer': layerlib.V}\n",
		"nodejs": "const l = require('layerlib');\nexports.handler = async () => ({ answer: l.V });\n",
	} {
		name := "layered-" + rt
		if _, st := n.createBuilt(map[string]any{"name": name, "runtime": rt, "code": code, "layers": []string{l.ID}}); st != http.StatusCreated {
			t.Fatalf("create %s: %d", name, st)
		}
		if a := answer(t, n, name); a != 7 {
			t.Errorf("%s: answer %v, want 7 from the layer", name, a)
		}
	}
}
