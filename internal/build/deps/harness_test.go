package deps_test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/build/deps"
	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/testenv"
)

// TestMain removes the fixtures the tests share.
func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range sharedDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

var (
	sharedMu   sync.Mutex
	sharedDirs []string
)

// sharedDir is a directory the build user can read, kept until the tests
// end: t.TempDir's parents are private to root.
func sharedDir(tb testing.TB) string {
	tb.Helper()
	d, err := os.MkdirTemp("", "nimbus-deps-test-")
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.Chmod(d, 0o755); err != nil {
		tb.Fatal(err)
	}
	sharedMu.Lock()
	sharedDirs = append(sharedDirs, d)
	sharedMu.Unlock()
	return d
}

var (
	interpOnce sync.Once
	interp     runtime.Interpreters
)

// interpreters are the host's, as the server finds them.
func interpreters(tb testing.TB, rt string) runtime.Interpreters {
	tb.Helper()
	interpOnce.Do(func() { interp, _ = runtime.FindInterpreters(context.Background(), os.LookupEnv) })
	if interp.Path(rt) == "" {
		testenv.Require(tb, rt, fmt.Errorf("no %s interpreter found", rt))
	}
	return interp
}

// newBuilder is a Builder of the host's interpreters with layers in a
// fresh directory; set adjusts its Config.
func newBuilder(tb testing.TB, rt string, set func(*deps.Config)) *deps.Builder {
	tb.Helper()
	cfg := deps.Config{Dir: filepath.Join(tb.TempDir(), "layers"), Interpreters: interpreters(tb, rt), Timeout: time.Minute}
	if set != nil {
		set(&cfg)
	}
	b, err := deps.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// srcDir writes a function's code.
func srcDir(tb testing.TB, files map[string]string) string {
	tb.Helper()
	d := tb.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(d, name), []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return d
}

// plan plans the code files for rt, which must declare dependencies.
func plan(tb testing.TB, b *deps.Builder, rt string, files map[string]string, scripts bool) *deps.Plan {
	tb.Helper()
	p, ok, err := b.Plan(rt, srcDir(tb, files), scripts)
	if err != nil || !ok {
		tb.Fatalf("Plan: %v, %v; want a plan", ok, err)
	}
	return p
}

// logBuffer collects a build's log; safe to read while it is written.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// run runs a command and returns its trimmed output.
func run(tb testing.TB, env []string, name string, args ...string) string {
	tb.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// wheelPython builds the Python fixtures: Debian's python3, which has pip,
// setuptools and wheel.
const wheelPython = "/usr/bin/python3"

var (
	wheelOnce sync.Once
	wheelDir  string
	wheelErr  error
)

// demoWheels returns a directory holding nimbusdemo-1.0's wheel (its
// nimbusdemo.answer() is 42), built here, offline, once.
func demoWheels(tb testing.TB) string {
	tb.Helper()
	for _, args := range [][]string{{"-m", "pip", "--version"}, {"-c", "import setuptools, wheel"}} {
		if out, err := exec.Command(wheelPython, args...).CombinedOutput(); err != nil {
			testenv.Require(tb, "python3 with pip, setuptools and wheel (make deps)", fmt.Errorf("%s: %v: %s", wheelPython, err, out))
		}
	}
	wheelOnce.Do(func() {
		src := tb.TempDir()
		files := map[string]string{
			"pyproject.toml": "[build-system]\nrequires = [\"setuptools\"]\nbuild-backend = \"setuptools.build_meta\"\n\n" +
				"[project]\nname = \"nimbusdemo\"\nversion = \"1.0\"\n\n[tool.setuptools]\npackages = [\"nimbusdemo\"]\n",
			"nimbusdemo/__init__.py": "def answer():\n    return 42\n",
		}
		for name, content := range files {
			p := filepath.Join(src, name)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				wheelErr = err
				return
			}
		}
		wheelDir = sharedDir(tb)
		cmd := exec.Command(wheelPython, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "--no-index",
			"--disable-pip-version-check", "-w", wheelDir, src)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + src, "PIP_CONFIG_FILE=/dev/null"}
		if out, err := cmd.CombinedOutput(); err != nil {
			wheelErr = fmt.Errorf("build the fixture wheel: %v\n%s", err, out)
		}
	})
	if wheelErr != nil {
		tb.Fatal(wheelErr)
	}
	return wheelDir
}

// demoWheel is the path of nimbusdemo's wheel.
func demoWheel(tb testing.TB) string {
	tb.Helper()
	m, _ := filepath.Glob(filepath.Join(demoWheels(tb), "nimbusdemo-1.0-*.whl"))
	if len(m) != 1 {
		tb.Fatalf("wheels %v, want nimbusdemo's", m)
	}
	return m[0]
}

// pythonImports runs python with the layer on its path and returns what
// nimbusdemo.answer() returns.
func pythonAnswer(tb testing.TB, python, layer string) string {
	tb.Helper()
	return run(tb, []string{"PYTHONPATH=" + filepath.Join(layer, "python")}, python, "-c",
		"import nimbusdemo; print(nimbusdemo.answer())")
}

// npmPackage is a package of the test registry: its tarball, made by npm
// pack.
type npmPackage struct {
	name, version, file string
	tarball             []byte
}

var (
	packOnce sync.Once
	packed   *npmPackage
	packErr  error
)

// answerPackage returns nimbus-answer 1.0.0, whose answer() is 42, packed
// once.
func answerPackage(tb testing.TB) *npmPackage {
	tb.Helper()
	in := interpreters(tb, runtime.NodeJS)
	packOnce.Do(func() {
		src, out, home := tb.TempDir(), tb.TempDir(), tb.TempDir()
		os.WriteFile(filepath.Join(src, "package.json"), []byte(`{"name": "nimbus-answer", "version": "1.0.0", "main": "index.js"}`), 0o644)
		os.WriteFile(filepath.Join(src, "index.js"), []byte("exports.answer = () => 42;\n"), 0o644)
		npm := filepath.Join(filepath.Dir(in.Path(runtime.NodeJS)), "npm")
		cmd := exec.Command(npm, "pack", "--pack-destination", out)
		cmd.Dir = src
		cmd.Env = []string{"PATH=" + filepath.Dir(in.Path(runtime.NodeJS)) + ":/usr/bin:/bin", "HOME=" + home,
			"npm_config_cache=" + filepath.Join(home, ".npm"), "npm_config_update_notifier=false"}
		if b, err := cmd.CombinedOutput(); err != nil {
			packErr = fmt.Errorf("npm pack: %v\n%s", err, b)
			return
		}
		const file = "nimbus-answer-1.0.0.tgz"
		data, err := os.ReadFile(filepath.Join(out, file))
		if err != nil {
			packErr = err
			return
		}
		packed = &npmPackage{name: "nimbus-answer", version: "1.0.0", file: file, tarball: data}
	})
	if packErr != nil {
		tb.Fatal(packErr)
	}
	return packed
}

// registry is an npm registry on loopback serving one package. It counts
// what it is asked; with hang set it answers nothing until the client
// goes away.
type registry struct {
	*httptest.Server
	pkg      *npmPackage
	requests atomic.Int64
	tarballs atomic.Int64
	hang     atomic.Bool
}

func newRegistry(tb testing.TB, pkg *npmPackage) *registry {
	tb.Helper()
	r := &registry{pkg: pkg}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{name}", r.packument)
	mux.HandleFunc("GET /{name}/-/{file}", r.file)
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		if r.hang.Load() {
			<-req.Context().Done()
			return
		}
		mux.ServeHTTP(w, req)
	}))
	tb.Cleanup(r.Close)
	return r
}

func (r *registry) packument(w http.ResponseWriter, req *http.Request) {
	if req.PathValue("name") != r.pkg.name {
		http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
		return
	}
	sha1sum := sha1.Sum(r.pkg.tarball)
	sha512sum := sha512.Sum512(r.pkg.tarball)
	version := map[string]any{
		"name":    r.pkg.name,
		"version": r.pkg.version,
		"main":    "index.js",
		"dist": map[string]any{
			"tarball":   r.URL + "/" + r.pkg.name + "/-/" + r.pkg.file,
			"shasum":    hex.EncodeToString(sha1sum[:]),
			"integrity": "sha512-" + base64.StdEncoding.EncodeToString(sha512sum[:]),
		},
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"name":      r.pkg.name,
		"dist-tags": map[string]string{"latest": r.pkg.version},
		"versions":  map[string]any{r.pkg.version: version},
	})
}

func (r *registry) file(w http.ResponseWriter, req *http.Request) {
	if req.PathValue("name") != r.pkg.name || req.PathValue("file") != r.pkg.file {
		http.NotFound(w, req)
		return
	}
	r.tarballs.Add(1)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(r.pkg.tarball)
}

// functionPackage is a function's package.json depending on
// nimbus-answer, with extra fields.
func functionPackage(extra string) string {
	return `{"name": "fn", "version": "1.0.0", "private": true, ` + extra + `"dependencies": {"nimbus-answer": "^1.0.0"}}`
}

// nodeAnswer runs node with the layer's modules on its path and returns
// what nimbus-answer's answer() returns.
func nodeAnswer(tb testing.TB, node, layer string) string {
	tb.Helper()
	return run(tb, []string{"NODE_PATH=" + filepath.Join(layer, "nodejs", "node_modules")}, node, "-e",
		"process.stdout.write(String(require('nimbus-answer').answer()))")
}

// buildErr asserts err is a *deps.BuildError.
func buildErr(tb testing.TB, err error) *deps.BuildError {
	tb.Helper()
	var be *deps.BuildError
	if !errors.As(err, &be) {
		tb.Fatalf("error %v (%T), want a *deps.BuildError", err, err)
	}
	return be
}

// simpleIndex is a PEP 503 simple index on loopback serving one wheel.
type simpleIndex struct {
	*httptest.Server
	wheels atomic.Int64
}

func newSimpleIndex(tb testing.TB, wheel string) *simpleIndex {
	tb.Helper()
	data, err := os.ReadFile(wheel)
	if err != nil {
		tb.Fatal(err)
	}
	name := filepath.Base(wheel)
	sum := sha256.Sum256(data)
	idx := &simpleIndex{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /simple/nimbusdemo/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "<!DOCTYPE html><html><body><a href=\"/files/%s#sha256=%s\">%s</a></body></html>\n", name, hex.EncodeToString(sum[:]), name)
	})
	mux.HandleFunc("GET /files/"+name, func(w http.ResponseWriter, r *http.Request) {
		idx.wheels.Add(1)
		w.Write(data)
	})
	idx.Server = httptest.NewServer(mux)
	tb.Cleanup(idx.Close)
	return idx
}
