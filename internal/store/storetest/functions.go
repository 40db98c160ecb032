package storetest

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/store"
)

func testFunctionRoundTrip(t *testing.T, h *harness) {
	b := h.createFunction(t, newFunction("bravo"))
	a := newFunction("alpha")
	a.Runtime, a.Handler, a.Driver = runtime.NodeJS, "lib/index.handler", "process"
	a.Network = true
	a.Files = map[string]string{"lib/index.js": "exports.handler = async (e) => e;\n"}
	a.Env = map[string]string{}
	// Secret references are stored by name; revealed values never are.
	a.SecretEnv = map[string]string{"DB_PASSWORD": "db-password", "API_KEY": "api.key_1"}
	a.Secrets = map[string]string{"DB_PASSWORD": "hunter2"}
	h.createFunction(t, a)
	a.Secrets = nil

	for _, want := range []*fn.Function{a, b} {
		got, err := h.s.GetFunction(h.ctx, want.ID)
		if err != nil {
			t.Fatalf("GetFunction(%s): %v", want.ID, err)
		}
		assertFunction(t, got, want)
	}

	list, err := h.s.ListFunctions(h.ctx)
	if err != nil {
		t.Fatalf("ListFunctions: %v", err)
	}
	if len(list) != 2 {
		t.Fatalf("ListFunctions returned %d functions, want 2", len(list))
	}
	assertFunction(t, list[0], a) // ordered by name
	assertFunction(t, list[1], b)
}

func testGetByName(t *testing.T, h *harness) {
	a := h.createFunction(t, newFunction("alpha"))
	// A name may look exactly like another function's id; the id wins.
	b := h.createFunction(t, newFunction(a.ID))

	tests := []struct {
		key  string
		want *fn.Function
	}{
		{"alpha", a},
		{a.ID, a},
		{b.ID, b},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			got, err := h.s.GetFunction(h.ctx, tc.key)
			if err != nil {
				t.Fatalf("GetFunction(%s): %v", tc.key, err)
			}
			assertFunction(t, got, tc.want)
		})
	}
}

func testNotFound(t *testing.T, h *harness) {
	f := h.createFunction(t, newFunction("alpha"))
	other := h.createFunction(t, newFunction("bravo"))
	e := newExecution(f.ID, fn.StatusSuccess, 1)
	h.insert(t, []*fn.Execution{e}, 1)
	ghost := newFunction("ghost")

	tests := []struct {
		name string
		call func() error
	}{
		{"get function by id", func() error { _, err := h.s.GetFunction(h.ctx, ghost.ID); return err }},
		{"get function by name", func() error { _, err := h.s.GetFunction(h.ctx, "ghost"); return err }},
		{"update function", func() error { return h.s.UpdateFunction(h.ctx, ghost, 1) }},
		{"delete function", func() error { return h.s.DeleteFunction(h.ctx, ghost.ID) }},
		{"get execution of unknown function", func() error { _, err := h.s.GetExecution(h.ctx, ghost.ID, e.ID); return err }},
		{"get unknown execution", func() error { _, err := h.s.GetExecution(h.ctx, f.ID, fn.NewID()); return err }},
		{"get execution of another function", func() error { _, err := h.s.GetExecution(h.ctx, other.ID, e.ID); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, fn.ErrNotFound) {
				t.Errorf("got %v, want fn.ErrNotFound", err)
			}
		})
	}

	t.Run("empty history is no error", func(t *testing.T) {
		got, err := h.s.ListExecutions(h.ctx, ghost.ID, store.ExecQuery{})
		if err != nil || len(got) != 0 {
			t.Errorf("ListExecutions(unknown) = %d rows, %v; want 0, nil", len(got), err)
		}
		n, err := h.s.PruneExecutions(h.ctx, ghost.ID, 0)
		if err != nil || n != 0 {
			t.Errorf("PruneExecutions(unknown) = %d, %v; want 0, nil", n, err)
		}
	})
}

func testDuplicateName(t *testing.T, h *harness) {
	a := h.createFunction(t, newFunction("alpha"))
	if err := h.s.CreateFunction(h.ctx, newFunction("alpha")); !errors.Is(err, fn.ErrConflict) {
		t.Fatalf("second CreateFunction(alpha) = %v, want fn.ErrConflict", err)
	}
	got, err := h.s.GetFunction(h.ctx, "alpha")
	if err != nil {
		t.Fatalf("GetFunction(alpha): %v", err)
	}
	assertFunction(t, got, a)
}

func testConcurrentCreates(t *testing.T, h *harness) {
	const n = 20
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = h.s.CreateFunction(h.ctx, newFunction("contested"))
		})
	}
	close(start)
	wg.Wait()

	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, fn.ErrConflict):
			t.Errorf("create %d: %v, want nil or fn.ErrConflict", i, err)
		}
	}
	if won != 1 {
		t.Errorf("%d creates succeeded, want exactly 1", won)
	}
	list, err := h.s.ListFunctions(h.ctx)
	if err != nil {
		t.Fatalf("ListFunctions: %v", err)
	}
	if len(list) != 1 {
		t.Errorf("%d functions stored, want 1", len(list))
	}
}

// changed returns a copy of f with every field but ID changed and the
// version bumped.
func changed(f *fn.Function) *fn.Function {
	g := *f
	g.Name = f.Name + "-renamed"
	g.Runtime, g.Handler = runtime.NodeJS, "index.run"
	g.Files = map[string]string{"index.js": "exports.run = async () => 42;\n", "data/x.json": "{}"}
	g.Env = map[string]string{"MODE": "prod"}
	g.SecretEnv = map[string]string{"TOKEN": "token"}
	g.Timeout, g.Memory, g.Driver, g.MaxInstances = 60_000, 512, "process", 3
	g.Network = !f.Network
	g.MinInstances, g.Concurrency, g.KeepAlive = 2, 8, 90_000
	g.Revision = f.Revision + 1
	g.UpdatedAt = f.UpdatedAt.Add(time.Hour)
	return &g
}

func testUpdate(t *testing.T, h *harness) {
	f := h.createFunction(t, newFunction("alpha"))
	g := changed(f)
	if err := h.s.UpdateFunction(h.ctx, g, f.Revision); err != nil {
		t.Fatalf("UpdateFunction: %v", err)
	}
	got, err := h.s.GetFunction(h.ctx, f.ID)
	if err != nil {
		t.Fatalf("GetFunction: %v", err)
	}
	assertFunction(t, got, g)
	if _, err := h.s.GetFunction(h.ctx, "alpha"); !errors.Is(err, fn.ErrNotFound) {
		t.Errorf("old name still resolves: %v", err)
	}
	// The old name is free again.
	h.createFunction(t, newFunction("alpha"))
}

func testUpdateStale(t *testing.T, h *harness) {
	f := h.createFunction(t, newFunction("alpha"))
	g := changed(f)
	if err := h.s.UpdateFunction(h.ctx, g, f.Revision); err != nil {
		t.Fatalf("first UpdateFunction: %v", err)
	}
	stale := changed(f) // a second writer that also read version 1
	stale.Name, stale.Memory = "stale", 1024
	if err := h.s.UpdateFunction(h.ctx, stale, f.Revision); !errors.Is(err, fn.ErrConflict) {
		t.Fatalf("stale UpdateFunction = %v, want fn.ErrConflict", err)
	}
	got, err := h.s.GetFunction(h.ctx, f.ID)
	if err != nil {
		t.Fatalf("GetFunction: %v", err)
	}
	assertFunction(t, got, g)
}

func testUpdateTakenName(t *testing.T, h *harness) {
	a := h.createFunction(t, newFunction("alpha"))
	b := h.createFunction(t, newFunction("bravo"))
	g := *b
	g.Name, g.Revision = "alpha", b.Revision+1
	if err := h.s.UpdateFunction(h.ctx, &g, b.Revision); !errors.Is(err, fn.ErrConflict) {
		t.Fatalf("UpdateFunction to a taken name = %v, want fn.ErrConflict", err)
	}
	for _, want := range []*fn.Function{a, b} {
		got, err := h.s.GetFunction(h.ctx, want.ID)
		if err != nil {
			t.Fatalf("GetFunction(%s): %v", want.Name, err)
		}
		assertFunction(t, got, want)
	}
}

func testDeleteRemovesExecutions(t *testing.T, h *harness) {
	doomed := h.createFunction(t, newFunction("doomed"))
	kept := h.createFunction(t, newFunction("kept"))
	doomedExecs := newExecutions(doomed.ID, 30, fn.StatusSuccess, fn.StatusError)
	keptExecs := newExecutions(kept.ID, 10)
	h.insert(t, append(append([]*fn.Execution{}, doomedExecs...), keptExecs...), 16)

	if err := h.s.DeleteFunction(h.ctx, doomed.ID); err != nil {
		t.Fatalf("DeleteFunction: %v", err)
	}
	if _, err := h.s.GetFunction(h.ctx, doomed.ID); !errors.Is(err, fn.ErrNotFound) {
		t.Errorf("GetFunction after delete = %v, want fn.ErrNotFound", err)
	}
	if got := h.listAll(t, doomed.ID, "", 100); len(got) != 0 {
		t.Errorf("%d executions of the deleted function remain", len(got))
	}
	if _, err := h.s.GetExecution(h.ctx, doomed.ID, doomedExecs[0].ID); !errors.Is(err, fn.ErrNotFound) {
		t.Errorf("GetExecution after delete = %v, want fn.ErrNotFound", err)
	}
	if err := h.s.DeleteFunction(h.ctx, doomed.ID); !errors.Is(err, fn.ErrNotFound) {
		t.Errorf("second DeleteFunction = %v, want fn.ErrNotFound", err)
	}
	assertExecutions(t, h.listAll(t, kept.ID, "", 100), newestFirst(keptExecs))
	// The name is free again.
	h.createFunction(t, newFunction("doomed"))
}

// testURLRoundTrip stores a function's URL settings, changes them to
// fewer and then to none: each read gives back what was written, and a
// record's trigger comes back with it.
func testURLRoundTrip(t *testing.T, h *harness) {
	f := h.createFunction(t, newFunction("with-url"))
	for i, u := range []*fn.URLConfig{
		{Enabled: false, Auth: fn.URLAuthKey},
		{Enabled: true, Auth: fn.URLAuthKey, CORS: &fn.CORS{AllowOrigins: []string{"*"}}},
		nil,
	} {
		prev := f.Revision
		g := *f
		g.URL, g.Revision = u, prev+1
		if err := h.s.UpdateFunction(h.ctx, &g, prev); err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
		got, err := h.s.GetFunction(h.ctx, f.Name)
		if err != nil {
			t.Fatal(err)
		}
		assertFunction(t, got, &g)
		f = &g
	}
	ex := newExecution(f.ID, fn.StatusSuccess, 1)
	h.insert(t, []*fn.Execution{ex}, 1)
	got, err := h.s.GetExecution(h.ctx, f.ID, ex.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Trigger != fn.TriggerHTTP {
		t.Errorf("trigger = %q, want %q", got.Trigger, fn.TriggerHTTP)
	}
}

// testTestEventsRoundTrip stores a function's saved test events (created
// with them, then changed, then none), as they come: names in order,
// events of any JSON (numbers too big for a float, keys with dots and
// dollars, the largest event allowed).
func testTestEventsRoundTrip(t *testing.T, h *harness) {
	big := `{"blob":"` + strings.Repeat("x", fn.MaxTestEventBytes-12) + `"}`
	f := newFunction("with-tests")
	f.TestEvents = []fn.TestEvent{{Name: "hello", Event: json.RawMessage(`{"name":"Ada"}`)}}
	f = h.createFunction(t, f)
	got, err := h.s.GetFunction(h.ctx, f.ID)
	if err != nil {
		t.Fatal(err)
	}
	assertFunction(t, got, f)
	for i, evs := range [][]fn.TestEvent{
		{{Name: "odd", Event: json.RawMessage(`{"$oid":"x","a.b":[1,2.5,123456789012345678901234567890],"n":null}`)},
			{Name: "scalar", Event: json.RawMessage(`"just text"`)}, {Name: "big", Event: json.RawMessage(big)}},
		nil,
	} {
		prev := f.Revision
		g := *f
		g.TestEvents, g.Revision = evs, prev+1
		if err := h.s.UpdateFunction(h.ctx, &g, prev); err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
		got, err := h.s.GetFunction(h.ctx, f.Name)
		if err != nil {
			t.Fatal(err)
		}
		assertFunction(t, got, &g)
		list, err := h.s.ListFunctions(h.ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range list {
			if l.ID == f.ID {
				assertFunction(t, l, &g)
			}
		}
		f = &g
	}
}
