package deps_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/build/deps"
	"github.com/nimbusfaas/nimbus/internal/runtime"
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
	if built != 1 || reg.tarballs.Load() != 1 {
		t.Errorf("%d of %d concurrent Builds built, the tarball was fetched %d times; want 1 and 1", built, builds, reg.tarballs.Load())
	}

	before := reg.requests.Load()
	var log logBuffer
	dir, cached2, err := b.Build(context.Background(), p, &log)
	if err != nil || !cached2 || dir != b.Dir(p.Key) {
		t.Fatalf("Build again = %s, %v, %v; want the cached layer", dir, cached2, err)
	}
	if n := reg.requests.Load() - before; n != 0 {
		t.Errorf("a cached Build asked the registry %d times", n)
	}
	if !strings.Contains(log.String(), "cached") {
		t.Errorf("a cached Build's log %q does not say so", log.String())
	}
}
