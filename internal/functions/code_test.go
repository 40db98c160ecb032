package functions_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/functions"
)

// TestCodeIsUnpackedOnceAndCollected: code is kept once by hash, found
// again from the store by a node that lacks it, and collected, blob and
// directory, once no function uses it.
func TestCodeIsUnpackedOnceAndCollected(t *testing.T) {
	n := newNode(t, nil)
	ctx := t.Context()
	codeDir := filepath.Join(t.TempDir(), "code")
	svc := functions.New(functions.Config{
		Store: n.store, Engine: n.engine, Defaults: fn.Defaults{TimeoutMs: 5000, MemoryMB: 128},
		CodeDir: codeDir, LayerDir: filepath.Join(t.TempDir(), "layers"),
		BlobGrace: time.Nanosecond, DirGrace: time.Nanosecond,
	})
	a, err := svc.Create(ctx, &fn.Function{Name: "a", Runtime: "python", Code: "def handler(e, c):\n    return 1\n"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := svc.Create(ctx, &fn.Function{Name: "b", Runtime: "python", Code: "def handler(e, c):\n    return 1\n"})
	if err != nil {
		t.Fatal(err)
	}
	v1 := a.CodeInfo.SHA256
	if b.CodeInfo.SHA256 != v1 {
		t.Fatalf("the same code got two hashes: %s, %s", v1, b.CodeInfo.SHA256)
	}
	// A node without the directory unpacks it from the store.
	if err := os.RemoveAll(filepath.Join(codeDir, v1)); err != nil {
		t.Fatal(err)
	}
	dir, _, err := svc.Code(ctx, a)
	if err != nil || dir != filepath.Join(codeDir, v1) {
		t.Fatalf("Code = %q, %v", dir, err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "main.py")); err != nil || string(got) != "def handler(e, c):\n    return 1\n" {
		t.Fatalf("main.py = %q, %v", got, err)
	}

	// a moves on; b still uses v1, so nothing goes.
	a2, _, err := svc.Update(ctx, "a", func(f *fn.Function) error { f.Files, f.CodeInfo = fn.Files{"main.py": "x = 2\n"}, nil; return nil })
	if err != nil {
		t.Fatal(err)
	}
	v2 := a2.CodeInfo.SHA256
	if err := svc.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	for _, sha := range []string{v1, v2} {
		if _, _, err := n.store.OpenBlob(ctx, sha); err != nil {
			t.Fatalf("blob %s collected while in use: %v", sha[:12], err)
		}
	}
	// b goes: v1 is used by nobody, and is collected, blob and directory.
	if _, err := svc.Delete(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if err := svc.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := n.store.OpenBlob(ctx, v1); !errors.Is(err, fn.ErrNotFound) {
		t.Fatalf("unused blob still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(codeDir, v1)); !os.IsNotExist(err) {
		t.Fatalf("unused code directory still there: %v", err)
	}
	if _, _, err := n.store.OpenBlob(ctx, v2); err != nil {
		t.Fatalf("the code in use was collected: %v", err)
	}
}

// blockingBuilder builds a layer for any code, after release is closed.
type blockingBuilder struct {
	started, release chan struct{}
	fail             bool
}

func (b *blockingBuilder) Build(ctx context.Context, rt, srcDir string, scripts bool, log io.Writer) (string, string, bool, error) {
	fmt.Fprintln(log, "installing")
	b.started <- struct{}{}
	<-b.release
	if b.fail {
		return "", "", false, errors.New("no such package")
	}
	return "key", srcDir, false, nil
}

func (b *blockingBuilder) Layer(key string) string { return "" }

// TestBuildingIsShown: while a new version builds, the function still
// stored is shown with buildStatus "building"; then "ready".
func TestBuildingIsShown(t *testing.T) {
	n := newNode(t, nil)
	ctx := t.Context()
	b := &blockingBuilder{started: make(chan struct{}, 1), release: make(chan struct{})}
	svc := functions.New(functions.Config{
		Store: n.store, Engine: n.engine, Defaults: fn.Defaults{TimeoutMs: 5000, MemoryMB: 128},
		CodeDir: filepath.Join(t.TempDir(), "code"), LayerDir: filepath.Join(t.TempDir(), "layers"), Builder: b,
	})
	close(b.release)
	if _, err := svc.Create(ctx, &fn.Function{Name: "slow", Runtime: "python", Code: "x = 1\n"}); err != nil {
		t.Fatal(err)
	}
	<-b.started
	b.release = make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, _, err := svc.Update(ctx, "slow", func(f *fn.Function) error { f.Files, f.CodeInfo = fn.Files{"main.py": "x = 2\n"}, nil; return nil })
		done <- err
	}()
	<-b.started
	f, err := svc.Get(ctx, "slow")
	if err != nil || f.BuildStatus == nil || f.BuildStatus.State != fn.BuildBuilding || f.Revision != 1 {
		t.Fatalf("during the build: %+v, %v; want version 1 shown building", f.BuildStatus, err)
	}
	close(b.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if f, _ := svc.Get(ctx, "slow"); f.BuildStatus.State != fn.BuildReady || f.Revision != 2 || f.BuildStatus.Log != "installing\n" {
		t.Fatalf("after the build: version %d, %+v", f.Revision, f.BuildStatus)
	}
}

// A function whose builds failed twice runs once code that builds comes:
// the failed builds did not make the engine take it for deleted.
func TestRunsAfterTwoFailedBuilds(t *testing.T) {
	n := newNode(t, nil)
	ctx := t.Context()
	b := &blockingBuilder{started: make(chan struct{}, 10), release: make(chan struct{}), fail: true}
	close(b.release)
	svc := functions.New(functions.Config{
		Store: n.store, Engine: n.engine, Defaults: fn.Defaults{TimeoutMs: 5000, MemoryMB: 128},
		CodeDir: filepath.Join(t.TempDir(), "code"), LayerDir: filepath.Join(t.TempDir(), "layers"), Builder: b,
	})
	if _, err := svc.Create(ctx, &fn.Function{Name: "deps", Runtime: "python", Code: "def handler(e, c):\n    return 1\n"}); err != nil {
		t.Fatal(err)
	}
	change := func(code string) func(*fn.Function) error {
		return func(f *fn.Function) error { f.Files, f.CodeInfo = fn.Files{"main.py": code}, nil; return nil }
	}
	// Its first build failed: a second failure is stored too (nothing
	// good to keep serving).
	if g, _, err := svc.Update(ctx, "deps", change("def handler(e, c):\n    return 2\n")); err != nil || g.BuildStatus.State != fn.BuildFailed {
		t.Fatalf("a second failed build: %+v, %v", g, err)
	}
	b.fail = false
	if _, _, err := svc.Update(ctx, "deps", change("def handler(e, c):\n    return 3\n")); err != nil {
		t.Fatal(err)
	}
	f, err := svc.Resolve(ctx, "deps")
	if err != nil {
		t.Fatal(err)
	}
	ex, err := n.engine.Invoke(ctx, f, json.RawMessage(`{}`))
	if err != nil || ex.Status != fn.StatusSuccess {
		t.Fatalf("after a good build: %+v, %v", ex, err)
	}
}
