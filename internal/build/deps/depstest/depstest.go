// Package depstest makes the packages that dependency-build tests install,
// offline: a Python wheel built with pip from a fixture, an npm tarball
// made with npm pack, and an npm registry on loopback that serves it.
// Nothing comes from a public index.
package depstest

import (
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
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

	"github.com/nimbusfaas/nimbus/internal/testenv"
)

var (
	sharedMu   sync.Mutex
	sharedDirs []string
)

// SharedDir is a directory the build user (nobody) can read, kept until
// Cleanup: t.TempDir's parents are private to root.
func SharedDir(tb testing.TB) string {
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

// Cleanup removes the shared directories; call it from TestMain after the
// tests ran.
func Cleanup() {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	for _, d := range sharedDirs {
		os.RemoveAll(d)
	}
	sharedDirs = nil
}

// WheelPython builds the Python fixtures: Debian's python3, which has
// pip, setuptools and wheel (make deps installs them).
const WheelPython = "/usr/bin/python3"

var (
	wheelOnce sync.Once
	wheelDir  string
	wheelErr  error
)

// Wheels returns a directory holding nimbusdemo-1.0's wheel (its
// nimbusdemo.answer() is 42), built here, offline, once: what
// NIMBUS_PIP_FIND_LINKS points at.
func Wheels(tb testing.TB) string {
	tb.Helper()
	for _, args := range [][]string{{"-m", "pip", "--version"}, {"-c", "import setuptools, wheel"}} {
		if out, err := exec.Command(WheelPython, args...).CombinedOutput(); err != nil {
			testenv.Require(tb, "python3 with pip, setuptools and wheel (make deps)", fmt.Errorf("%s: %v: %s", WheelPython, err, out))
		}
	}
	wheelOnce.Do(func() {
		src, err := os.MkdirTemp("", "nimbusdemo-src-")
		if err != nil {
			wheelErr = err
			return
		}
		defer os.RemoveAll(src)
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
		wheelDir = SharedDir(tb)
		cmd := exec.Command(WheelPython, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "--no-index",
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

// Wheel is the path of nimbusdemo's wheel.
func Wheel(tb testing.TB) string {
	tb.Helper()
	m, _ := filepath.Glob(filepath.Join(Wheels(tb), "nimbusdemo-1.0-*.whl"))
	if len(m) != 1 {
		tb.Fatalf("wheels %v, want nimbusdemo's", m)
	}
	return m[0]
}

// Package is a package of the test registry: its tarball, made by npm
// pack.
type Package struct {
	Name, Version, File string
	Tarball             []byte
}

var (
	packOnce sync.Once
	packed   *Package
	packErr  error
)

// AnswerPackage returns nimbus-answer 1.0.0, whose answer() is 42, packed
// once with the npm beside node.
func AnswerPackage(tb testing.TB, node string) *Package {
	tb.Helper()
	packOnce.Do(func() {
		tmp, err := os.MkdirTemp("", "nimbus-answer-")
		if err != nil {
			packErr = err
			return
		}
		defer os.RemoveAll(tmp)
		src, out, home := filepath.Join(tmp, "src"), filepath.Join(tmp, "out"), filepath.Join(tmp, "home")
		for _, d := range []string{src, out, home} {
			os.MkdirAll(d, 0o755)
		}
		os.WriteFile(filepath.Join(src, "package.json"), []byte(`{"name": "nimbus-answer", "version": "1.0.0", "main": "index.js"}`), 0o644)
		os.WriteFile(filepath.Join(src, "index.js"), []byte("exports.answer = () => 42;\n"), 0o644)
		npm := filepath.Join(filepath.Dir(node), "npm")
		cmd := exec.Command(npm, "pack", "--pack-destination", out)
		cmd.Dir = src
		cmd.Env = []string{"PATH=" + filepath.Dir(node) + ":/usr/bin:/bin", "HOME=" + home,
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
		packed = &Package{Name: "nimbus-answer", Version: "1.0.0", File: file, Tarball: data}
	})
	if packErr != nil {
		tb.Fatal(packErr)
	}
	return packed
}

// Registry is an npm registry on loopback serving one package. It counts
// what it is asked; with Hang set it answers nothing until the client
// goes away.
type Registry struct {
	*httptest.Server
	Pkg       *Package
	requests  atomic.Int64
	tarballs  atomic.Int64
	Hang      atomic.Bool
	HangStart chan struct{} // closed when a request first hangs
	hangOnce  sync.Once
}

// Requests is how many requests the registry has had.
func (r *Registry) Requests() int64 { return r.requests.Load() }

// Tarballs is how many times it served the tarball.
func (r *Registry) Tarballs() int64 { return r.tarballs.Load() }

// NewRegistry serves pkg on loopback until the test ends.
func NewRegistry(tb testing.TB, pkg *Package) *Registry {
	tb.Helper()
	r := &Registry{Pkg: pkg, HangStart: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{name}", r.packument)
	mux.HandleFunc("GET /{name}/-/{file}", r.file)
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		if r.Hang.Load() {
			r.hangOnce.Do(func() { close(r.HangStart) })
			<-req.Context().Done()
			return
		}
		mux.ServeHTTP(w, req)
	}))
	tb.Cleanup(r.Close)
	return r
}

func (r *Registry) packument(w http.ResponseWriter, req *http.Request) {
	if req.PathValue("name") != r.Pkg.Name {
		http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
		return
	}
	sha1sum := sha1.Sum(r.Pkg.Tarball)
	sha512sum := sha512.Sum512(r.Pkg.Tarball)
	version := map[string]any{
		"name":    r.Pkg.Name,
		"version": r.Pkg.Version,
		"main":    "index.js",
		"dist": map[string]any{
			"tarball":   r.URL + "/" + r.Pkg.Name + "/-/" + r.Pkg.File,
			"shasum":    hex.EncodeToString(sha1sum[:]),
			"integrity": "sha512-" + base64.StdEncoding.EncodeToString(sha512sum[:]),
		},
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"name":      r.Pkg.Name,
		"dist-tags": map[string]string{"latest": r.Pkg.Version},
		"versions":  map[string]any{r.Pkg.Version: version},
	})
}

func (r *Registry) file(w http.ResponseWriter, req *http.Request) {
	if req.PathValue("name") != r.Pkg.Name || req.PathValue("file") != r.Pkg.File {
		http.NotFound(w, req)
		return
	}
	r.tarballs.Add(1)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(r.Pkg.Tarball)
}

// PurelibDir is the site-packages directory of the python3 on PATH (the
// interpreter Nimbus runs functions with), resolved through any pyenv
// shim: where a package installed on the host lands.
func PurelibDir(tb testing.TB) string {
	tb.Helper()
	out, err := exec.Command("python3", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").Output()
	if err != nil {
		testenv.Require(tb, "python3", err)
	}
	return strings.TrimSpace(string(out))
}
