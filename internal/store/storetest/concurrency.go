package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/store"
)

func testConcurrentReadWrite(t *testing.T, h *harness) {
	const (
		writers = 4
		batches = 10
		batch   = 25
		readers = 4
	)
	fns := []*fn.Function{h.createFunction(t, newFunction("alpha")), h.createFunction(t, newFunction("bravo"))}
	seed := newExecution(fns[0].ID, fn.StatusSuccess, 0)
	h.insert(t, []*fn.Execution{seed}, 1)

	var (
		writersWG, readersWG sync.WaitGroup
		done                 atomic.Bool
		reads                atomic.Int64
	)
	for w := range writers {
		writersWG.Go(func() {
			f := fns[w%len(fns)]
			for b := range batches {
				execs := newExecutions(f.ID, batch, fn.StatusSuccess, fn.StatusError)
				if err := h.s.InsertExecutions(h.ctx, execs); err != nil {
					t.Errorf("writer %d batch %d: %v", w, b, err)
					return
				}
			}
		})
	}
	for r := range readers {
		readersWG.Go(func() {
			f := fns[r%len(fns)]
			for i := 0; i == 0 || !done.Load(); i++ {
				q := store.ExecQuery{Limit: 60}
				if i%3 == 1 {
					q.Status = fn.StatusError
				}
				got, err := h.s.ListExecutions(h.ctx, f.ID, q)
				if err != nil {
					t.Errorf("reader %d: ListExecutions: %v", r, err)
					return
				}
				if !slices.IsSortedFunc(got, func(a, b *fn.Execution) int { return strings.Compare(b.ID, a.ID) }) {
					t.Errorf("reader %d: page not newest first", r)
				}
				for _, e := range got {
					if e.FunctionID != f.ID || (q.Status != "" && e.Status != q.Status) {
						t.Errorf("reader %d: got %s of %s with status %s", r, e.ID, e.FunctionID, e.Status)
					}
				}
				if _, err := h.s.GetExecution(h.ctx, fns[0].ID, seed.ID); err != nil {
					t.Errorf("reader %d: GetExecution: %v", r, err)
				}
				if _, err := h.s.GetFunction(h.ctx, f.Name); err != nil {
					t.Errorf("reader %d: GetFunction: %v", r, err)
				}
				reads.Add(1)
			}
		})
	}
	writersWG.Wait()
	done.Store(true)
	readersWG.Wait()
	t.Logf("%d reads during %d inserts", reads.Load(), writers*batches*batch)

	total := 0
	for _, f := range fns {
		got := h.listAll(t, f.ID, "", 1000)
		seen := map[string]bool{}
		for _, e := range got {
			if seen[e.ID] {
				t.Errorf("%s listed twice", e.ID)
			}
			seen[e.ID] = true
		}
		total += len(got)
	}
	if want := 1 + writers*batches*batch; total != want {
		t.Errorf("%d executions stored, want %d", total, want)
	}
}

// testConcurrentUpdates has writers that all read version 1 update it at
// once, half of them to one new name: exactly one wins, the others get
// fn.ErrConflict, and the winner's function is what is stored.
func testConcurrentUpdates(t *testing.T, h *harness) {
	const n = 12
	f := h.createFunction(t, newFunction("alpha"))
	updates := make([]*fn.Function, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		g := changed(f)
		g.Memory = 128 + i
		if i%2 == 0 {
			g.Name = "contested"
		} else {
			g.Name = fmt.Sprintf("alpha-%d", i)
		}
		updates[i] = g
		wg.Go(func() {
			<-start
			errs[i] = h.s.UpdateFunction(h.ctx, g, f.Revision)
		})
	}
	close(start)
	wg.Wait()

	var winner *fn.Function
	for i, err := range errs {
		switch {
		case err == nil && winner == nil:
			winner = updates[i]
		case err == nil:
			t.Errorf("updates %d and of memory %d both succeeded on version %d", i, winner.Memory, f.Revision)
		case !errors.Is(err, fn.ErrConflict):
			t.Errorf("update %d: %v, want nil or fn.ErrConflict", i, err)
		}
	}
	if winner == nil {
		t.Fatal("no update succeeded")
	}
	got, err := h.s.GetFunction(h.ctx, f.ID)
	if err != nil {
		t.Fatalf("GetFunction: %v", err)
	}
	assertFunction(t, got, winner)
}

func testRestart(t *testing.T, h *harness) {
	a := h.createFunction(t, newFunction("alpha"))
	b := h.createFunction(t, newFunction("bravo"))
	b2 := changed(b)
	if err := h.s.UpdateFunction(h.ctx, b2, b.Revision); err != nil {
		t.Fatalf("UpdateFunction: %v", err)
	}
	execs := newExecutions(a.ID, 40, fn.Statuses...)
	h.insert(t, execs, 16)
	if _, err := h.s.PruneExecutions(h.ctx, a.ID, 30); err != nil {
		t.Fatalf("PruneExecutions: %v", err)
	}
	execs = execs[10:]

	h.restart(t)

	for _, want := range []*fn.Function{a, b2} {
		got, err := h.s.GetFunction(h.ctx, want.Name)
		if err != nil {
			t.Fatalf("GetFunction(%s) after restart: %v", want.Name, err)
		}
		assertFunction(t, got, want)
	}
	assertExecutions(t, h.listAll(t, a.ID, "", 7), newestFirst(execs))
	got, err := h.s.GetExecution(h.ctx, a.ID, execs[3].ID)
	if err != nil {
		t.Fatalf("GetExecution after restart: %v", err)
	}
	assertExecution(t, got, execs[3], true)

	// Still writable, constraints and versions intact.
	if err := h.s.CreateFunction(h.ctx, newFunction("alpha")); !errors.Is(err, fn.ErrConflict) {
		t.Errorf("CreateFunction(alpha) after restart = %v, want fn.ErrConflict", err)
	}
	if err := h.s.UpdateFunction(h.ctx, changed(b), b.Revision); !errors.Is(err, fn.ErrConflict) {
		t.Errorf("stale UpdateFunction after restart = %v, want fn.ErrConflict", err)
	}
	more := newExecutions(a.ID, 5)
	h.insert(t, more, 5)
	assertExecutions(t, h.listAll(t, a.ID, "", 1000), newestFirst(append(execs, more...)))
}
