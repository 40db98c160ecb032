package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/store"
)

// testAsyncRoundTrip: a function's async settings and schedules are
// stored as given, through create and update, except a schedule's
// NextRun, which is never stored.
func testAsyncRoundTrip(t *testing.T, h *harness) {
	f := newFunction("async")
	next := epoch.Add(time.Hour)
	in := *f
	in.Schedules = append([]fn.Schedule(nil), f.Schedules...)
	in.Schedules[0].NextRun = &next
	h.createFunction(t, &in)
	got, err := h.s.GetFunction(h.ctx, f.ID)
	if err != nil {
		t.Fatalf("GetFunction: %v", err)
	}
	assertFunction(t, got, f)
	if in.Schedules[0].NextRun != &next {
		t.Errorf("CreateFunction changed the caller's schedules")
	}
	list, err := h.s.ListFunctions(h.ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("ListFunctions = %d functions, %v; want 1", len(list), err)
	}
	assertFunction(t, list[0], f)

	for i, c := range []struct {
		async     *fn.AsyncConfig
		schedules []fn.Schedule
	}{
		{nil, nil},
		// A zero MaxRetries is not the default (nil).
		{&fn.AsyncConfig{MaxRetries: ptr(0)}, []fn.Schedule{{Name: "one", Rate: "1h", Enabled: ptr(true), NextRun: &next}}},
		{&fn.AsyncConfig{OnFailure: &fn.Destination{Function: "dead-letters"}}, nil},
	} {
		prev := f.Revision
		g := *f
		g.Async, g.Schedules, g.Revision = c.async, c.schedules, prev+1
		if err := h.s.UpdateFunction(h.ctx, &g, prev); err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
		got, err := h.s.GetFunction(h.ctx, f.Name)
		if err != nil {
			t.Fatalf("update %d: GetFunction: %v", i, err)
		}
		assertFunction(t, got, &g)
		switch {
		case (got.Async == nil) != (c.async == nil):
			t.Errorf("update %d: Async = %+v, want %+v", i, got.Async, c.async)
		case c.async != nil && c.async.MaxRetries != nil && (got.Async.MaxRetries == nil || *got.Async.MaxRetries != *c.async.MaxRetries):
			t.Errorf("update %d: Async.MaxRetries = %v, want %d", i, got.Async.MaxRetries, *c.async.MaxRetries)
		}
		f = &g
	}
}

// testAttemptRoundTrip: an execution's attempt is stored and read back,
// listed and in full; a negative one is refused.
func testAttemptRoundTrip(t *testing.T, h *harness) {
	f := h.createFunction(t, newFunction("alpha"))
	execs := newExecutions(f.ID, 6, fn.StatusSuccess, fn.StatusError, fn.StatusQueued, fn.StatusRunning)
	for i, e := range execs {
		e.Attempt = i % 4 // 0 for a call that was not async
		if e.Attempt > 0 {
			e.Trigger = fn.TriggerAsync
		}
	}
	h.insert(t, execs, 6)
	got, err := h.s.ListExecutions(h.ctx, f.ID, store.ExecQuery{})
	if err != nil {
		t.Fatalf("ListExecutions: %v", err)
	}
	assertExecutions(t, got, newestFirst(execs))
	for _, want := range execs {
		got, err := h.s.GetExecution(h.ctx, f.ID, want.ID)
		if err != nil {
			t.Fatalf("GetExecution(%s): %v", want.ID, err)
		}
		assertExecution(t, got, want, true)
	}

	bad := newExecution(f.ID, fn.StatusSuccess, 9)
	bad.Attempt = -1
	if err := h.s.InsertExecutions(h.ctx, []*fn.Execution{bad}); !errors.Is(err, fn.ErrInvalid) {
		t.Errorf("InsertExecutions(attempt -1) = %v, want fn.ErrInvalid", err)
	}
	if _, err := h.s.GetExecution(h.ctx, f.ID, bad.ID); !errors.Is(err, fn.ErrNotFound) {
		t.Errorf("GetExecution(refused record) = %v, want fn.ErrNotFound", err)
	}
}

// stageRecord returns a record of call id at a stage: status and attempt;
// i varies its content, so that which record is stored shows.
func stageRecord(fid, id string, status fn.Status, attempt, i int) *fn.Execution {
	e := newExecution(fid, status, i)
	e.ID, e.Attempt, e.Trigger = id, attempt, fn.TriggerAsync
	if !status.Final() {
		e.Result, e.Error, e.DurationMs = nil, nil, 0
	}
	return e
}

// testStageUpsert: records of one id replace the stored one if and only
// if their (attempt, stage) is greater, whatever order they come in,
// batch by batch or within one batch, and a batch written again changes
// nothing.
func testStageUpsert(t *testing.T, h *harness) {
	f := h.createFunction(t, newFunction("alpha"))
	type rec struct {
		status  fn.Status
		attempt int
	}
	var (
		queued   = rec{fn.StatusQueued, 0}
		running1 = rec{fn.StatusRunning, 1}
		success1 = rec{fn.StatusSuccess, 1}
		error1   = rec{fn.StatusError, 1}
		running2 = rec{fn.StatusRunning, 2}
		success2 = rec{fn.StatusSuccess, 2}
		timeout2 = rec{fn.StatusTimeout, 2}
	)
	for _, c := range []struct {
		name    string
		batches [][]rec
		want    []rec // stored after each batch
	}{
		{"queued then final", [][]rec{{queued}, {success1}}, []rec{queued, success1}},
		{"final then late queued", [][]rec{{success1}, {queued}}, []rec{success1, success1}},
		{"final then late running", [][]rec{{success1}, {running1}}, []rec{success1, success1}},
		{"running then final", [][]rec{{running1}, {success1}}, []rec{running1, success1}},
		{"a retry replaces the failed attempt",
			[][]rec{{queued}, {running1}, {error1}, {running2}, {success2}},
			[]rec{queued, running1, error1, running2, success2}},
		{"a late record of the failed attempt", [][]rec{{running2}, {error1}, {running1}, {queued}}, []rec{running2, running2, running2, running2}},
		{"another final status of the same attempt is skipped", [][]rec{{success2}, {timeout2}}, []rec{success2, success2}},
		{"the same record twice", [][]rec{{success1}, {success1}}, []rec{success1, success1}},
		{"in order within one batch", [][]rec{{queued, running1, success1}}, []rec{success1}},
		{"out of order within one batch", [][]rec{{success1, queued, running1}}, []rec{success1}},
		{"a retry out of order within one batch", [][]rec{{success2, running1, error1, queued, running2}}, []rec{success2}},
	} {
		t.Run(c.name, func(t *testing.T) {
			id := fn.NewID()
			// Every record differs in content (i), so the one stored shows.
			i := 0
			records := map[rec]*fn.Execution{}
			record := func(r rec) *fn.Execution {
				if records[r] == nil {
					i++
					records[r] = stageRecord(f.ID, id, r.status, r.attempt, i)
				}
				return records[r]
			}
			for n, b := range c.batches {
				batch := make([]*fn.Execution, len(b))
				for k, r := range b {
					batch[k] = record(r)
				}
				if err := h.s.InsertExecutions(h.ctx, batch); err != nil {
					t.Fatalf("batch %d: InsertExecutions: %v", n, err)
				}
				got, err := h.s.GetExecution(h.ctx, f.ID, id)
				if err != nil {
					t.Fatalf("batch %d: GetExecution: %v", n, err)
				}
				want := record(c.want[n])
				if got.Status != want.Status || got.Attempt != want.Attempt {
					t.Fatalf("batch %d: stored %s attempt %d, want %s attempt %d", n, got.Status, got.Attempt, want.Status, want.Attempt)
				}
				assertExecution(t, got, want, true)
			}
			list, err := h.s.ListExecutions(h.ctx, f.ID, store.ExecQuery{Limit: store.MaxExecLimit})
			if err != nil {
				t.Fatalf("ListExecutions: %v", err)
			}
			n := 0
			for _, e := range list {
				if e.ID == id {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%s listed %d times, want once", id, n)
			}
		})
	}

	// A large batch (several statements' worth) of many calls at mixed
	// stages, records of one id apart and out of order, written in part
	// and then again in whole, as a retry after a partial failure does.
	t.Run("a large batch written again", func(t *testing.T) {
		g := h.createFunction(t, newFunction("bravo"))
		var batch, tail, want []*fn.Execution
		for k := range 40 {
			id := fn.NewID()
			final := stageRecord(g.ID, id, fn.StatusSuccess, 1, 3*k)
			want = append(want, final)
			switch k % 3 {
			case 0: // a new id, final only
				batch = append(batch, final)
			case 1: // the final record before the queued one
				batch = append(batch, final, stageRecord(g.ID, id, fn.StatusQueued, 0, 3*k+1))
			case 2: // queued, and the final record far after it
				batch = append(batch, stageRecord(g.ID, id, fn.StatusQueued, 0, 3*k+1))
				tail = append(tail, final)
			}
		}
		batch = append(batch, tail...)
		if err := h.s.InsertExecutions(h.ctx, batch[:len(batch)/3]); err != nil {
			t.Fatalf("InsertExecutions(part): %v", err)
		}
		for range 2 {
			if err := h.s.InsertExecutions(h.ctx, batch); err != nil {
				t.Fatalf("InsertExecutions(whole): %v", err)
			}
		}
		got, err := h.s.ListExecutions(h.ctx, g.ID, store.ExecQuery{Limit: store.MaxExecLimit})
		if err != nil {
			t.Fatalf("ListExecutions: %v", err)
		}
		assertExecutions(t, got, newestFirst(want))
	})
}

// testStageStatusFilter: the status filter finds queued and running
// records, and a record that moved on is found by its new status only.
func testStageStatusFilter(t *testing.T, h *harness) {
	f := h.createFunction(t, newFunction("alpha"))
	ids := make([]string, 5)
	for i := range ids {
		ids[i] = fn.NewID()
	}
	queued := stageRecord(f.ID, ids[0], fn.StatusQueued, 0, 0)
	running := stageRecord(f.ID, ids[1], fn.StatusRunning, 1, 1)
	succeeded := stageRecord(f.ID, ids[2], fn.StatusSuccess, 1, 2)
	failed := stageRecord(f.ID, ids[3], fn.StatusError, 2, 3)
	retrying := stageRecord(f.ID, ids[4], fn.StatusRunning, 2, 4)
	h.insert(t, []*fn.Execution{
		queued,
		stageRecord(f.ID, ids[1], fn.StatusQueued, 0, 5), running,
		stageRecord(f.ID, ids[2], fn.StatusQueued, 0, 6),
		stageRecord(f.ID, ids[3], fn.StatusQueued, 0, 7),
		stageRecord(f.ID, ids[4], fn.StatusQueued, 0, 8),
	}, 6)
	h.insert(t, []*fn.Execution{
		stageRecord(f.ID, ids[2], fn.StatusRunning, 1, 9), succeeded,
		stageRecord(f.ID, ids[3], fn.StatusRunning, 2, 10), failed,
		stageRecord(f.ID, ids[4], fn.StatusError, 1, 11),
	}, 5)
	h.insert(t, []*fn.Execution{retrying}, 1)
	// Another function's records at every stage.
	other := h.createFunction(t, newFunction("bravo"))
	h.insert(t, []*fn.Execution{
		stageRecord(other.ID, fn.NewID(), fn.StatusQueued, 0, 12),
		stageRecord(other.ID, fn.NewID(), fn.StatusRunning, 1, 13),
	}, 2)

	for _, c := range []struct {
		status fn.Status
		want   []*fn.Execution
	}{
		{fn.StatusQueued, []*fn.Execution{queued}},
		{fn.StatusRunning, []*fn.Execution{retrying, running}},
		{fn.StatusSuccess, []*fn.Execution{succeeded}},
		{fn.StatusError, []*fn.Execution{failed}},
	} {
		t.Run(string(c.status), func(t *testing.T) {
			for _, page := range []int{1, 10} {
				t.Run(fmt.Sprint("page ", page), func(t *testing.T) {
					assertExecutions(t, h.listAll(t, f.ID, c.status, page), c.want)
				})
			}
		})
	}
}
