package deps_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/build/deps"
	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/runtimeapi/runtimeapitest"
)

// goBuilder is a Builder of Go functions with the host's go command and
// no proxy: what a build needs comes from the code's vendor/.
func goBuilder(t *testing.T) *deps.Builder {
	t.Helper()
	gocmd, err := runtimeapitest.GoCommand()
	if err != nil {
		t.Fatal(err) // GoFunction required it already
	}
	b, err := deps.New(deps.Config{Dir: filepath.Join(t.TempDir(), "layers"), Go: gocmd, GoProxy: "off", Timeout: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeTree(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, b := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestGoBuild: Go sources (go.mod, vendored aws-lambda-go) of the provided
// runtime build, in the build sandbox with no network, into a layer whose
// bootstrap is a static executable; the same sources are then cached, and
// any change of a source is a new layer.
func TestGoBuild(t *testing.T) {
	files := runtimeapitest.GoFunction(t)
	b := goBuilder(t)
	src := writeTree(t, files)
	p, ok, err := b.Plan(runtime.Provided, src, false)
	if err != nil || !ok {
		t.Fatalf("plan: %v, %v", ok, err)
	}
	if strings.Join(p.Files, " ") != "go.mod go.sum" {
		t.Errorf("plan files %q", p.Files)
	}
	var log bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir, cached, err := b.Build(ctx, p, &log)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, log.String())
	}
	if cached {
		t.Error("a first build was cached")
	}
	if !strings.Contains(log.String(), "net (no network)") && os.Geteuid() == 0 {
		t.Errorf("a vendored build had network: %s", log.String())
	}
	boot := filepath.Join(dir, "bootstrap")
	fi, err := os.Stat(boot)
	if err != nil || fi.Mode().Perm()&0o111 == 0 {
		t.Fatalf("bootstrap: %v %v", fi, err)
	}
	head := make([]byte, 4)
	f, _ := os.Open(boot)
	f.Read(head)
	f.Close()
	if string(head) != "\x7fELF" {
		t.Errorf("bootstrap starts %q, not an executable", head)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("the layer holds %d entries, want only the bootstrap", len(entries))
	}

	if _, cached, err := b.Build(ctx, p, nil); err != nil || !cached {
		t.Errorf("the same sources again: cached %v, %v", cached, err)
	}
	files["main.go"] = append(files["main.go"], "\n// changed\n"...)
	p2, _, err := b.Plan(runtime.Provided, writeTree(t, files), false)
	if err != nil || p2.Key == p.Key {
		t.Errorf("changed sources: key %s (was %s), %v", p2.Key, p.Key, err)
	}

	t.Run("a prebuilt bootstrap is not built", func(t *testing.T) {
		_, ok, err := b.Plan(runtime.Provided, writeTree(t, map[string][]byte{"bootstrap": []byte("#!/bin/sh\n"), "go.mod": files["go.mod"]}), false)
		if ok || err != nil {
			t.Errorf("plan: %v, %v", ok, err)
		}
	})
	t.Run("a compile error fails the build with its output", func(t *testing.T) {
		bad := map[string][]byte{"go.mod": []byte("module example.com/bad\n\ngo 1.23\n"), "main.go": []byte("package main\n\nfunc main() { undefined() }\n")}
		p, _, err := b.Plan(runtime.Provided, writeTree(t, bad), false)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = b.Build(ctx, p, nil)
		var be *deps.BuildError
		if !errors.As(err, &be) || !strings.Contains(err.Error(), "undefined") {
			t.Errorf("build: %v, want a BuildError naming the error", err)
		}
	})
	t.Run("no go command", func(t *testing.T) {
		nogo, err := deps.New(deps.Config{Dir: filepath.Join(t.TempDir(), "layers")})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := nogo.Plan(runtime.Provided, src, false); err == nil || !strings.Contains(err.Error(), deps.EnvGo) {
			t.Errorf("plan without go: %v", err)
		}
	})
}
