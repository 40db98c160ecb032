package storetest

import (
	"errors"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// newVersion returns version number of f: a snapshot of f as it is.
func newVersion(f *fn.Function, number int) *fn.Version {
	snap := *f
	snap.Version = number
	snap.Env = maps.Clone(f.Env)
	snap.SecretEnv = maps.Clone(f.SecretEnv)
	return &fn.Version{
		Function:    &snap,
		Description: "release \"" + string(rune('0'+number)) + "\" ✓ <&>",
		ConfigHash:  f.BehaviourHash(),
		PublishedAt: epoch.Add(time.Duration(number) * time.Minute),
	}
}

func assertVersion(t *testing.T, got, want *fn.Version) {
	t.Helper()
	if got == nil || got.Function == nil {
		t.Fatalf("version %d: got %+v", want.Version, got)
	}
	if got.Version != want.Version {
		t.Errorf("version number = %d, want %d", got.Version, want.Version)
	}
	if got.Description != want.Description || got.ConfigHash != want.ConfigHash {
		t.Errorf("version %d: description %q, hash %q; want %q, %q", want.Version, got.Description, got.ConfigHash, want.Description, want.ConfigHash)
	}
	if !got.PublishedAt.Equal(want.PublishedAt) {
		t.Errorf("version %d: PublishedAt = %v, want %v", want.Version, got.PublishedAt, want.PublishedAt)
	}
	assertFunction(t, got.Function, want.Function)
}

func testVersions(t *testing.T, h *harness) {
	// The full fixture, with code, layers and build as well, and a file
	// that is not text.
	f := newFunction("versioned")
	f.Files["data.bin"] = "\xff\x00\xfe"
	f.CodeInfo = &fn.CodeInfo{SHA256: shaOf([]byte("zip")), Size: 3, UnpackedSize: 40, Files: []fn.FileInfo{
		{Path: "main.py", Size: 37, SHA256: shaOf([]byte("a")), Mode: 0o644},
		{Path: "x", Link: "run.sh", Mode: 0o777},
	}}
	f.Layers = []string{shaOf([]byte("layer"))}
	f.Build = &fn.BuildSettings{Scripts: true}
	f.BuildStatus = &fn.BuildStatus{State: fn.BuildFailed, CodeSHA256: shaOf([]byte("zip2")), Layer: "k", Error: "boom",
		Log: "line 1\nline 2\n", StartedAt: time.Unix(1700000000, 0).UTC(), FinishedAt: time.Unix(1700000001, 0).UTC()}
	f.Network, f.MinInstances, f.KeepAlive = true, 2, 60_000
	f.SecretEnv = map[string]string{"DB_PASSWORD": "db-password"}
	f.Secrets = map[string]string{"DB_PASSWORD": "hunter2"} // never stored
	h.createFunction(t, f)
	other := h.createFunction(t, newFunction("other"))

	var want []*fn.Version
	for n := 1; n <= 3; n++ {
		f.Revision = n + 4 // the draft moves on between versions
		f.Env["N"] = string(rune('0' + n))
		v := newVersion(f, n)
		if err := h.s.CreateVersion(h.ctx, v); err != nil {
			t.Fatalf("CreateVersion(%d): %v", n, err)
		}
		want = append(want, newVersion(f, n)) // its own: the store may not keep v
	}
	if err := h.s.CreateVersion(h.ctx, newVersion(f, 2)); !errors.Is(err, fn.ErrConflict) {
		t.Errorf("CreateVersion of a taken number = %v, want fn.ErrConflict", err)
	}
	ghost := newFunction("ghost")
	if err := h.s.CreateVersion(h.ctx, newVersion(ghost, 1)); !errors.Is(err, fn.ErrNotFound) {
		t.Errorf("CreateVersion of an unknown function = %v, want fn.ErrNotFound", err)
	}
	// Another function's numbers are its own.
	if err := h.s.CreateVersion(h.ctx, newVersion(other, 2)); err != nil {
		t.Fatalf("CreateVersion(other, 2): %v", err)
	}

	for _, w := range want {
		got, err := h.s.GetVersion(h.ctx, f.ID, w.Version)
		if err != nil {
			t.Fatalf("GetVersion(%d): %v", w.Version, err)
		}
		assertVersion(t, got, w)
	}
	if _, err := h.s.GetVersion(h.ctx, f.ID, 4); !errors.Is(err, fn.ErrNotFound) {
		t.Errorf("GetVersion of a missing number = %v, want fn.ErrNotFound", err)
	}
	if _, err := h.s.GetVersion(h.ctx, other.ID, 1); !errors.Is(err, fn.ErrNotFound) {
		t.Errorf("GetVersion(other, 1) = %v, want fn.ErrNotFound", err)
	}

	list, err := h.s.ListVersions(h.ctx, f.ID)
	if err != nil {
		t.Fatalf("ListVersions: %v", err)
	}
	if len(list) != len(want) {
		t.Fatalf("ListVersions: %d versions, want %d", len(list), len(want))
	}
	for i := range want {
		assertVersion(t, list[i], want[i])
	}
	if list, err := h.s.ListVersions(h.ctx, ghost.ID); err != nil || len(list) != 0 {
		t.Errorf("ListVersions of an unknown function = %d versions, %v; want none", len(list), err)
	}

	if err := h.s.DeleteVersion(h.ctx, f.ID, 2); err != nil {
		t.Fatalf("DeleteVersion(2): %v", err)
	}
	if _, err := h.s.GetVersion(h.ctx, f.ID, 2); !errors.Is(err, fn.ErrNotFound) {
		t.Errorf("GetVersion after delete = %v, want fn.ErrNotFound", err)
	}
	if err := h.s.DeleteVersion(h.ctx, f.ID, 2); !errors.Is(err, fn.ErrNotFound) {
		t.Errorf("DeleteVersion again = %v, want fn.ErrNotFound", err)
	}
	list, err = h.s.ListVersions(h.ctx, f.ID)
	if err != nil || len(list) != 2 || list[0].Version != 1 || list[1].Version != 3 {
		t.Fatalf("ListVersions after delete = %d versions, %v; want 1 and 3", len(list), err)
	}
	if v, err := h.s.GetVersion(h.ctx, other.ID, 2); err != nil || v.ID != other.ID {
		t.Errorf("GetVersion(other, 2) after deleting f's 2 = %v, %v", v, err)
	}

	// Versions outlive a restart.
	h.restart(t)
	got, err := h.s.GetVersion(h.ctx, f.ID, 3)
	if err != nil {
		t.Fatalf("GetVersion(3) after restart: %v", err)
	}
	assertVersion(t, got, want[2])
}

func newAlias(fid, name string, version int) *fn.Alias {
	return &fn.Alias{
		FunctionID: fid, Name: name, Version: version, Description: "the " + name + " <&> ✓",
		Revision: 1, CreatedAt: epoch, UpdatedAt: epoch,
		History: []fn.AliasMove{{At: epoch, Version: version, Reason: "create"}},
	}
}

func assertAlias(t *testing.T, got, want *fn.Alias) {
	t.Helper()
	if got == nil {
		t.Fatalf("alias %s: got nil", want.Name)
	}
	if gs, ws := mustJSON(t, got), mustJSON(t, want); gs != ws {
		t.Errorf("alias %s:\n got %s\nwant %s", want.Name, gs, ws)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Errorf("alias %s: times %v, %v; want %v, %v", want.Name, got.CreatedAt, got.UpdatedAt, want.CreatedAt, want.UpdatedAt)
	}
}

func testAliases(t *testing.T, h *harness) {
	f := h.createFunction(t, newFunction("aliased"))
	other := h.createFunction(t, newFunction("other"))
	for n := 1; n <= 3; n++ {
		if err := h.s.CreateVersion(h.ctx, newVersion(f, n)); err != nil {
			t.Fatalf("CreateVersion(%d): %v", n, err)
		}
	}

	// Created out of order: listed by name.
	names := []string{"prod", "beta", "Zeta", "live-1"}
	for i, name := range names {
		if err := h.s.CreateAlias(h.ctx, newAlias(f.ID, name, 1+i%3)); err != nil {
			t.Fatalf("CreateAlias(%s): %v", name, err)
		}
	}
	if err := h.s.CreateAlias(h.ctx, newAlias(f.ID, "prod", 3)); !errors.Is(err, fn.ErrConflict) {
		t.Errorf("CreateAlias of a taken name = %v, want fn.ErrConflict", err)
	}
	if err := h.s.CreateAlias(h.ctx, newAlias(fn.NewID(), "prod", 1)); !errors.Is(err, fn.ErrNotFound) {
		t.Errorf("CreateAlias of an unknown function = %v, want fn.ErrNotFound", err)
	}
	if err := h.s.CreateAlias(h.ctx, newAlias(other.ID, "prod", 1)); err != nil {
		t.Errorf("CreateAlias(other, prod): %v (names are per function)", err)
	}

	got, err := h.s.GetAlias(h.ctx, f.ID, "prod")
	if err != nil {
		t.Fatalf("GetAlias(prod): %v", err)
	}
	assertAlias(t, got, newAlias(f.ID, "prod", 1))
	if _, err := h.s.GetAlias(h.ctx, f.ID, "nope"); !errors.Is(err, fn.ErrNotFound) {
		t.Errorf("GetAlias of a missing name = %v, want fn.ErrNotFound", err)
	}

	list, err := h.s.ListAliases(h.ctx, f.ID)
	if err != nil {
		t.Fatalf("ListAliases: %v", err)
	}
	wantOrder := []string{"Zeta", "beta", "live-1", "prod"} // bytewise
	if len(list) != len(wantOrder) {
		t.Fatalf("ListAliases: %d aliases, want %d", len(list), len(wantOrder))
	}
	for i, name := range wantOrder {
		if list[i].Name != name || list[i].FunctionID != f.ID {
			t.Errorf("ListAliases[%d] = %s of %s, want %s", i, list[i].Name, list[i].FunctionID, name)
		}
	}

	// Update with the right revision: weights, history and all.
	a := newAlias(f.ID, "prod", 2)
	a.AdditionalVersionWeights = map[string]float64{"3": 0.125}
	a.Revision, a.UpdatedAt = 2, epoch.Add(time.Hour+250*time.Millisecond)
	a.Move(a.UpdatedAt, "update")
	if err := h.s.UpdateAlias(h.ctx, a, 1); err != nil {
		t.Fatalf("UpdateAlias from revision 1: %v", err)
	}
	got, err = h.s.GetAlias(h.ctx, f.ID, "prod")
	if err != nil {
		t.Fatalf("GetAlias after update: %v", err)
	}
	assertAlias(t, got, a)
	if len(got.History) != 2 || got.History[1].Weights["3"] != 0.125 || got.AdditionalVersionWeights["3"] != 0.125 {
		t.Errorf("alias after update: history %+v, weights %v", got.History, got.AdditionalVersionWeights)
	}

	// A stale revision loses, and changes nothing.
	stale := newAlias(f.ID, "prod", 3)
	stale.Revision = 2
	if err := h.s.UpdateAlias(h.ctx, stale, 1); !errors.Is(err, fn.ErrConflict) {
		t.Errorf("UpdateAlias from a stale revision = %v, want fn.ErrConflict", err)
	}
	if err := h.s.UpdateAlias(h.ctx, newAlias(f.ID, "nope", 1), 1); !errors.Is(err, fn.ErrNotFound) {
		t.Errorf("UpdateAlias of a missing alias = %v, want fn.ErrNotFound", err)
	}
	got, err = h.s.GetAlias(h.ctx, f.ID, "prod")
	if err != nil {
		t.Fatalf("GetAlias after stale update: %v", err)
	}
	assertAlias(t, got, a)
	if o, err := h.s.GetAlias(h.ctx, other.ID, "prod"); err != nil || o.Version != 1 || o.Revision != 1 {
		t.Errorf("other's prod after updating f's = %+v, %v", o, err)
	}

	if err := h.s.DeleteAlias(h.ctx, f.ID, "beta"); err != nil {
		t.Fatalf("DeleteAlias(beta): %v", err)
	}
	if _, err := h.s.GetAlias(h.ctx, f.ID, "beta"); !errors.Is(err, fn.ErrNotFound) {
		t.Errorf("GetAlias after delete = %v, want fn.ErrNotFound", err)
	}
	if err := h.s.DeleteAlias(h.ctx, f.ID, "beta"); !errors.Is(err, fn.ErrNotFound) {
		t.Errorf("DeleteAlias again = %v, want fn.ErrNotFound", err)
	}
	if list, err := h.s.ListAliases(h.ctx, f.ID); err != nil || len(list) != 3 {
		t.Errorf("ListAliases after delete = %d aliases, %v; want 3", len(list), err)
	}

	// Aliases outlive a restart.
	h.restart(t)
	got, err = h.s.GetAlias(h.ctx, f.ID, "prod")
	if err != nil {
		t.Fatalf("GetAlias after restart: %v", err)
	}
	assertAlias(t, got, a)
}

func testDeleteRemovesVersionsAndAliases(t *testing.T, h *harness) {
	f := h.createFunction(t, newFunction("doomed"))
	keep := h.createFunction(t, newFunction("kept"))
	for _, g := range []*fn.Function{f, keep} {
		for n := 1; n <= 2; n++ {
			if err := h.s.CreateVersion(h.ctx, newVersion(g, n)); err != nil {
				t.Fatalf("CreateVersion: %v", err)
			}
		}
		if err := h.s.CreateAlias(h.ctx, newAlias(g.ID, "prod", 2)); err != nil {
			t.Fatalf("CreateAlias: %v", err)
		}
	}
	if err := h.s.DeleteFunction(h.ctx, f.ID); err != nil {
		t.Fatalf("DeleteFunction: %v", err)
	}
	if vs, err := h.s.ListVersions(h.ctx, f.ID); err != nil || len(vs) != 0 {
		t.Errorf("ListVersions after DeleteFunction = %d, %v; want none", len(vs), err)
	}
	if _, err := h.s.GetVersion(h.ctx, f.ID, 1); !errors.Is(err, fn.ErrNotFound) {
		t.Errorf("GetVersion after DeleteFunction = %v, want fn.ErrNotFound", err)
	}
	if as, err := h.s.ListAliases(h.ctx, f.ID); err != nil || len(as) != 0 {
		t.Errorf("ListAliases after DeleteFunction = %d, %v; want none", len(as), err)
	}
	if _, err := h.s.GetAlias(h.ctx, f.ID, "prod"); !errors.Is(err, fn.ErrNotFound) {
		t.Errorf("GetAlias after DeleteFunction = %v, want fn.ErrNotFound", err)
	}
	if vs, err := h.s.ListVersions(h.ctx, keep.ID); err != nil || len(vs) != 2 {
		t.Errorf("ListVersions of the other function = %d, %v; want 2", len(vs), err)
	}
	if as, err := h.s.ListAliases(h.ctx, keep.ID); err != nil || len(as) != 1 {
		t.Errorf("ListAliases of the other function = %d, %v; want 1", len(as), err)
	}
	// The function's id can be used again from scratch: a new function
	// with that id starts without versions (and numbers are free again).
	again := newFunction("doomed")
	again.ID = f.ID
	h.createFunction(t, again)
	if err := h.s.CreateVersion(h.ctx, newVersion(again, 1)); err != nil {
		t.Errorf("CreateVersion(1) of a recreated function: %v", err)
	}
	if err := h.s.CreateAlias(h.ctx, newAlias(again.ID, "prod", 1)); err != nil {
		t.Errorf("CreateAlias(prod) of a recreated function: %v", err)
	}
}

// testConcurrentAliasUpdates: of several updates of one alias from the
// same revision, exactly one wins and the others are fn.ErrConflict.
func testConcurrentAliasUpdates(t *testing.T, h *harness) {
	const n = 12
	f := h.createFunction(t, newFunction("alpha"))
	base := newAlias(f.ID, "prod", 1)
	if err := h.s.CreateAlias(h.ctx, base); err != nil {
		t.Fatalf("CreateAlias: %v", err)
	}
	updates := make([]*fn.Alias, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		a := newAlias(f.ID, "prod", 2+i)
		a.Revision = base.Revision + 1
		a.Move(epoch.Add(time.Duration(i)*time.Second), "update")
		updates[i] = a
		wg.Go(func() {
			<-start
			errs[i] = h.s.UpdateAlias(h.ctx, a, base.Revision)
		})
	}
	close(start)
	wg.Wait()

	var winner *fn.Alias
	for i, err := range errs {
		switch {
		case err == nil && winner == nil:
			winner = updates[i]
		case err == nil:
			t.Errorf("updates to versions %d and %d both succeeded on revision %d", updates[i].Version, winner.Version, base.Revision)
		case !errors.Is(err, fn.ErrConflict):
			t.Errorf("update %d: %v, want nil or fn.ErrConflict", i, err)
		}
	}
	if winner == nil {
		t.Fatal("no update succeeded")
	}
	got, err := h.s.GetAlias(h.ctx, f.ID, "prod")
	if err != nil {
		t.Fatalf("GetAlias: %v", err)
	}
	assertAlias(t, got, winner)
}
