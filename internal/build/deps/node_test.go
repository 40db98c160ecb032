package deps_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/build/deps"
	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/testenv"
)

// TestNodeInstallThenCI: package.json without a lock is installed by npm
// install from the registry; the lock that build leaves in the layer, given
// with the code, makes another layer, installed by npm ci. Node requires
// the package from either.
func TestNodeInstallThenCI(t *testing.T) {
	reg := newRegistry(t, answerPackage(t))
	b := newBuilder(t, runtime.NodeJS, func(c *deps.Config) { c.NpmRegistry = reg.URL })
	node := interpreters(t, runtime.NodeJS).Path(runtime.NodeJS)
	pkg := functionPackage("")
	p := plan(t, b, runtime.NodeJS, map[string]string{"package.json": pkg, "index.js": "exports.handler = async () => 1;\n"}, false)
	var log logBuffer
	dir, cached, err := b.Build(context.Background(), p, &log)
	if err != nil {
		t.Fatalf("Build: %v\nlog:\n%s", err, log.String())
	}
	if cached || !strings.Contains(log.String(), "npm install") {
		t.Errorf("cached %v, log:\n%s\nwant npm install", cached, log.String())
	}
	if got := nodeAnswer(t, node, dir); got != "42" {
		t.Errorf("answer() = %q, want 42", got)
	}
	assertSealed(t, dir)
	lock, err := os.ReadFile(filepath.Join(dir, "nodejs", "package-lock.json"))
	if err != nil {
		t.Fatalf("npm install left no lock: %v", err)
	}

	p2 := plan(t, b, runtime.NodeJS, map[string]string{"package.json": pkg, "package-lock.json": string(lock)}, false)
	if p2.Key == p.Key {
		t.Fatal("a lock did not change the key")
	}
	log = logBuffer{}
	dir2, _, err := b.Build(context.Background(), p2, &log)
	if err != nil {
		t.Fatalf("Build with the lock: %v\nlog:\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "npm ci") {
		t.Errorf("log:\n%s\nwant npm ci", log.String())
	}
	if got := nodeAnswer(t, node, dir2); got != "42" {
		t.Errorf("answer() from the npm ci layer = %q, want 42", got)
	}
}

// TestNodeCached: concurrent Builds of one plan build once; a later Build
// runs nothing at all: the registry hears nothing more.
func TestNodeCached(t *testing.T) {
	reg := newRegistry(t, answerPackage(t))
	b := newBuilder(t, runtime.NodeJS, func(c *deps.Config) { c.NpmRegistry = reg.URL })
	p := plan(t, b, runtime.NodeJS, map[string]string{"package.json": functionPackage("")}, false)

	const builds = 3
	var (
		wg     sync.WaitGroup
		cached [builds]bool
		errs   [builds]error
	)
	for i := range builds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, cached[i], errs[i] = b.Build(context.Background(), p, nil)
		}()
	}
	wg.Wait()
	built := 0
	for i := range builds {
		if errs[i] != nil {
			t.Fatalf("Build %d: %v", i, errs[i])
		}
		if !cached[i] {
			built++
		}
	}
	if built != 1 || reg.Tarballs() != 1 {
		t.Errorf("%d of %d concurrent Builds built, the tarball was fetched %d times; want 1 and 1", built, builds, reg.Tarballs())
	}

	before := reg.Requests()
	var log logBuffer
	dir, cached2, err := b.Build(context.Background(), p, &log)
	if err != nil || !cached2 || dir != b.Dir(p.Key) {
		t.Fatalf("Build again = %s, %v, %v; want the cached layer", dir, cached2, err)
	}
	if n := reg.Requests() - before; n != 0 {
		t.Errorf("a cached Build asked the registry %d times", n)
	}
	if !strings.Contains(log.String(), "cached") {
		t.Errorf("a cached Build's log %q does not say so", log.String())
	}
}

// TestNodeGitDependencyScriptsOff: npm prepares a git dependency that has
// scripts by running a second npm install in its clone, not given the
// first's --ignore-scripts on its command line (npm 11 passes it on in
// npm_config_ variables): with scripts off, the dependency's install
// script must not run there either. (With scripts on it does: the test
// sees it.)
func TestNodeGitDependencyScriptsOff(t *testing.T) {
	git, err := exec.LookPath("git")
	testenv.Require(t, "git", err)
	repo := filepath.Join(t.TempDir(), "gitdep")
	os.Mkdir(repo, 0o755)
	// The script leaves its mark in the layer: HOME is the work
	// directory's home, beside the layer.
	os.WriteFile(filepath.Join(repo, "package.json"), []byte(`{"name": "gitdep", "version": "1.0.0", "main": "index.js",
  "scripts": {"install": "echo ran > \"$HOME/../layer/nodejs/gitdep-ran\""}}`), 0o644)
	os.WriteFile(filepath.Join(repo, "index.js"), []byte("exports.ok = true;\n"), 0o644)
	served := t.TempDir()
	env := []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "GIT_CONFIG_NOSYSTEM=1"}
	for _, args := range [][]string{
		{"-C", repo, "init", "-q", "-b", "main"},
		{"-C", repo, "add", "."},
		{"-C", repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "gitdep"},
		{"clone", "-q", "--bare", repo, filepath.Join(served, "gitdep.git")},
		{"-C", filepath.Join(served, "gitdep.git"), "update-server-info"}, // git's dumb HTTP
	} {
		run(t, env, git, args...)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(served)))
	t.Cleanup(srv.Close)

	b := newBuilder(t, runtime.NodeJS, nil)
	pkg := `{"name": "fn", "version": "1.0.0", "dependencies": {"gitdep": "git+` + srv.URL + `/gitdep.git"}}`
	var log logBuffer
	dir, _, err := b.Build(context.Background(), plan(t, b, runtime.NodeJS, map[string]string{"package.json": pkg}, false), &log)
	if err != nil {
		t.Fatalf("Build: %v\nlog:\n%s", err, log.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "nodejs", "node_modules", "gitdep", "index.js")); err != nil {
		t.Fatalf("the git dependency is not installed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "nodejs", "gitdep-ran")); err == nil {
		t.Error("with scripts off, the git dependency's install script ran")
	}
}
