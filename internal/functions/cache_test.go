package functions_test

import (
	"errors"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// TestChangesFromAnotherServerReachResolve runs two services on one
// database, as two servers sharing MongoDB would: a function one of them
// changes or deletes stops being served as it was by the other, which had
// it cached, and the other's instances of it stop.
func TestChangesFromAnotherServerReachResolve(t *testing.T) {
	a := newNode(t, nil)
	b := newNode(t, a.store)

	f := a.create("shared")
	if r, err := b.call("shared"); err != nil || r.Version != 1 {
		t.Fatalf("call on b: %+v, %v", r, err)
	}

	if _, _, err := a.svc.Update(t.Context(), "shared", patch(t, map[string]any{"timeout": 1234})); err != nil {
		t.Fatalf("update on a: %v", err)
	}
	eventually(t, "b runs version 2", func() bool { r, err := b.call("shared"); return err == nil && r.Version == 2 })

	if _, err := a.svc.Delete(t.Context(), "shared"); err != nil {
		t.Fatalf("delete on a: %v", err)
	}
	eventually(t, "b no longer finds it", func() bool {
		_, err := b.svc.Resolve(t.Context(), "shared")
		return errors.Is(err, fn.ErrNotFound)
	})
	if _, err := b.svc.Resolve(t.Context(), f.ID); !errors.Is(err, fn.ErrNotFound) {
		t.Errorf("b resolves the deleted function by id: %v", err)
	}
	if c := b.engine.Instances(f.ID); c.Idle+c.Busy+c.Starting != 0 {
		t.Errorf("b still has instances of the deleted function: %+v", c)
	}
}

// TestIDsAndNamesResolveApart: a function whose name is another's id (one
// stored before such names were refused, or written by an import) never
// receives the calls made by that id, whichever was looked up first.
func TestIDsAndNamesResolveApart(t *testing.T) {
	for _, order := range []string{"impostor first", "victim first"} {
		t.Run(order, func(t *testing.T) {
			n := newNode(t, nil)
			victim := n.create("victim")
			impostor := &fn.Function{ID: fn.NewID(), Name: victim.ID, Runtime: runtime.Python, Handler: "main.handler",
				Files: map[string]string{"main.py": "x = 1"}, Env: map[string]string{},
				Timeout: 1000, Memory: 128, Driver: fn.DefaultDriver, MaxInstances: 2, Concurrency: 1, Revision: 1}
			if err := n.store.CreateFunction(t.Context(), impostor); err != nil {
				t.Fatal(err)
			}
			callImpostor := func() {
				t.Helper()
				if _, err := n.call(impostor.ID); !errors.Is(err, fn.ErrInvalid) {
					t.Errorf("call of the function with an id for a name: %v, want fn.ErrInvalid", err)
				}
			}
			if order == "impostor first" {
				callImpostor()
			}
			for range 2 { // from the store, then from the cache
				if r, err := n.call(victim.ID); err != nil || r.ID != victim.ID {
					t.Fatalf("call by the victim's id ran %+v (%v); want the victim %s", r, err, victim.ID)
				}
			}
			callImpostor()
			if r, err := n.call(victim.ID); err != nil || r.ID != victim.ID {
				t.Fatalf("call by the victim's id ran %+v (%v); want the victim %s", r, err, victim.ID)
			}
		})
	}
}
