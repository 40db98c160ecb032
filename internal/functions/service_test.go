package functions_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/functions"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

func patch(t *testing.T, fields map[string]any) func(*fn.Function) error {
	t.Helper()
	p := map[string]json.RawMessage{}
	for k, v := range fields {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		p[k] = b
	}
	return func(f *fn.Function) error { return functions.Merge(f, p) }
}

func TestLifecycle(t *testing.T) {
	n := newNode(t, nil)
	ctx := t.Context()
	f := n.create("life")
	if f.Revision != 1 || f.ID == "" || f.Handler != "main.handler" || f.Timeout != 5000 || f.Memory != 128 ||
		f.CodeInfo == nil || !f.CodeInfo.Has("main.py") || f.BuildStatus == nil || f.BuildStatus.State != fn.BuildReady {
		t.Fatalf("created %+v", f)
	}
	if _, err := n.svc.Create(ctx, &fn.Function{Name: "life", Runtime: "python", Code: "x = 1"}); !errors.Is(err, fn.ErrConflict) {
		t.Errorf("second create of life: %v, want fn.ErrConflict", err)
	}
	if r, err := n.call("life"); err != nil || r.Version != 1 {
		t.Fatalf("call v1: %+v, %v", r, err)
	}

	// A change that runs the same keeps the version.
	got, changed, err := n.svc.Update(ctx, "life", patch(t, map[string]any{"timeout": 5000}))
	if err != nil || changed || got.Revision != 1 {
		t.Fatalf("no-op update: %+v changed=%v err=%v", got, changed, err)
	}
	// A real change bumps it, and the next call runs the new version.
	got, changed, err = n.svc.Update(ctx, f.ID, patch(t, map[string]any{"code": "def handler(e, c):\n    return 2\n"}))
	if err != nil || !changed || got.Revision != 2 || got.ID != f.ID || !got.CreatedAt.Equal(f.CreatedAt) {
		t.Fatalf("update: %+v changed=%v err=%v", got, changed, err)
	}
	if r, err := n.call("life"); err != nil || r.Version != 2 {
		t.Fatalf("call after update: %+v, %v; want version 2", r, err)
	}
	// Bad changes change nothing.
	for name, p := range map[string]map[string]any{
		"identity":     {"id": "x"},
		"version":      {"version": 9},
		"unknown":      {"colour": "red"},
		"invalid":      {"memory": 1},
		"id-like name": {"name": fn.NewID()},
	} {
		if _, _, err := n.svc.Update(ctx, "life", patch(t, p)); !errors.Is(err, fn.ErrInvalid) {
			t.Errorf("update %s: %v, want fn.ErrInvalid", name, err)
		}
	}
	if got, err := n.svc.Get(ctx, "life"); err != nil || got.Revision != 2 {
		t.Fatalf("after bad updates: %+v, %v", got, err)
	}
	if list, err := n.svc.List(ctx); err != nil || len(list) != 1 || list[0].ID != f.ID {
		t.Fatalf("list: %+v, %v", list, err)
	}

	if _, err := n.svc.Delete(ctx, "life"); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"life", f.ID} {
		if _, err := n.svc.Resolve(ctx, key); !errors.Is(err, fn.ErrNotFound) {
			t.Errorf("resolve %s after delete: %v, want fn.ErrNotFound", key, err)
		}
		if _, err := n.svc.Get(ctx, key); !errors.Is(err, fn.ErrNotFound) {
			t.Errorf("get %s after delete: %v, want fn.ErrNotFound", key, err)
		}
	}
	if _, _, err := n.svc.Update(ctx, "life", patch(t, map[string]any{"timeout": 1})); !errors.Is(err, fn.ErrNotFound) {
		t.Errorf("update after delete: %v, want fn.ErrNotFound", err)
	}
}

// TestCallResolvedBeforeDeleteDoesNotRun is a call that found its function
// and reaches the engine after the delete: it is refused, and nothing of
// the function is left running.
func TestCallResolvedBeforeDeleteDoesNotRun(t *testing.T) {
	n := newNode(t, nil)
	n.create("doomed")
	f, err := n.svc.Resolve(t.Context(), "doomed")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.svc.Delete(t.Context(), "doomed"); err != nil {
		t.Fatal(err)
	}
	if _, err := n.engine.Invoke(t.Context(), f, json.RawMessage(`{}`)); !errors.Is(err, fn.ErrNotFound) {
		t.Errorf("invoke after delete: %v, want fn.ErrNotFound", err)
	}
	if got := n.driver.started.Load(); got != 0 {
		t.Errorf("%d instances started for a deleted function", got)
	}
	if all := n.engine.AllInstances(false); len(all) != 0 {
		t.Errorf("the engine still has %+v", all)
	}
}

// TestStoredFunctionsAreValidatedBeforeTheyRun: the store may hold what no
// API call lets in (an import, another writer of a shared database). Such
// a function can be seen and deleted, but not run, not even its
// minInstances.
func TestStoredFunctionsAreValidatedBeforeTheyRun(t *testing.T) {
	n := newNode(t, nil)
	ctx := t.Context()
	good := n.create("good")
	if _, _, err := n.svc.Update(ctx, "good", patch(t, map[string]any{"minInstances": 1})); err != nil {
		t.Fatal(err)
	}
	bad := &fn.Function{ID: fn.NewID(), Name: "escape", Runtime: runtime.Python, Handler: "main.handler",
		Files: map[string]string{"main.py": "x = 1", "../../outside.py": "x = 2"}, Env: map[string]string{},
		Timeout: 1000, Memory: 128, Driver: fn.DefaultDriver, MaxInstances: 2, MinInstances: 1, Concurrency: 1, Revision: 1}
	if err := n.store.CreateFunction(ctx, bad); err != nil {
		t.Fatal(err)
	}

	for _, key := range []string{"escape", bad.ID} {
		_, err := n.svc.Resolve(ctx, key)
		var fe *fn.FieldError
		if !errors.Is(err, fn.ErrInvalid) || !errors.As(err, &fe) || fe.Field != "files" {
			t.Errorf("resolve %s: %v, want an invalid files error", key, err)
		}
	}
	if got, err := n.svc.Get(ctx, "escape"); err != nil || got.ID != bad.ID {
		t.Errorf("get of the invalid function: %+v, %v", got, err)
	}

	// A fresh server starts the minInstances of the valid function only.
	m := newNode(t, n.store)
	if err := m.svc.WarmUp(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the valid function's instance is up", func() bool { return m.engine.Instances(good.ID).Idle == 1 })
	if c := m.engine.Instances(bad.ID); c.Idle+c.Starting+c.Busy != 0 {
		t.Errorf("the invalid function has instances: %+v", c)
	}
	if got := m.driver.started.Load(); got != 1 {
		t.Errorf("%d instances started, want 1", got)
	}

	if _, err := n.svc.Delete(ctx, "escape"); err != nil {
		t.Errorf("delete of the invalid function: %v", err)
	}
}

// TestWarmUpReportsAStoreItCannotRead: no function runs, and the caller
// learns why.
func TestWarmUpReportsAStoreItCannotRead(t *testing.T) {
	st := openStore(t)
	n := newNode(t, st)
	st.Close()
	if err := n.svc.WarmUp(context.Background()); err == nil {
		t.Error("WarmUp on a closed store: no error")
	}
}
