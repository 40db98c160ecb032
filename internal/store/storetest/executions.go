package storetest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/store"
)

func testInsertAndList(t *testing.T, h *harness) {
	f := h.createFunction(t, newFunction("alpha"))
	other := h.createFunction(t, newFunction("bravo"))
	execs := newExecutions(f.ID, 100, fn.Statuses...)
	h.insert(t, execs[:1], 1)
	h.insert(t, execs[1:40], 13)
	h.insert(t, execs[40:], 60)
	h.insert(t, newExecutions(other.ID, 20), 20)

	got, err := h.s.ListExecutions(h.ctx, f.ID, store.ExecQuery{Limit: 1000})
	if err != nil {
		t.Fatalf("ListExecutions: %v", err)
	}
	assertExecutions(t, got, newestFirst(execs))

	if err := h.s.InsertExecutions(h.ctx, nil); err != nil {
		t.Errorf("InsertExecutions(empty batch) = %v, want nil", err)
	}
}

func testPagination(t *testing.T, h *harness) {
	f := h.createFunction(t, newFunction("alpha"))
	execs := newExecutions(f.ID, 137, fn.StatusSuccess, fn.StatusTimeout)
	h.insert(t, execs, 50)

	for _, page := range []int{1, 10, 136, 137, 500} {
		got := h.listAll(t, f.ID, "", page)
		seen := make(map[string]bool, len(got))
		for _, e := range got {
			if seen[e.ID] {
				t.Fatalf("page size %d: %s listed twice", page, e.ID)
			}
			seen[e.ID] = true
		}
		assertExecutions(t, got, newestFirst(execs))
	}

	t.Run("before an unknown id", func(t *testing.T) {
		mid := execs[70].ID + "0" // sorts just after execs[70], matches no record
		got, err := h.s.ListExecutions(h.ctx, f.ID, store.ExecQuery{Limit: 5, Before: mid})
		if err != nil {
			t.Fatalf("ListExecutions: %v", err)
		}
		assertExecutions(t, got, newestFirst(execs[66:71]))
	})
}

func testStatusFilter(t *testing.T, h *harness) {
	f := h.createFunction(t, newFunction("alpha"))
	execs := newExecutions(f.ID, 90, fn.StatusSuccess, fn.StatusError, fn.StatusSuccess, fn.StatusTimeout, fn.StatusOOM)
	h.insert(t, execs, 32)
	h.insert(t, newExecutions(h.createFunction(t, newFunction("bravo")).ID, 30, fn.Statuses...), 30)

	for _, status := range fn.Statuses {
		t.Run(string(status), func(t *testing.T) {
			var want []*fn.Execution
			for _, e := range newestFirst(execs) {
				if e.Status == status {
					want = append(want, e)
				}
			}
			assertExecutions(t, h.listAll(t, f.ID, status, 7), want)
		})
	}
}

func testVersionFilter(t *testing.T, h *harness) {
	f := h.createFunction(t, newFunction("alpha"))
	execs := newExecutions(f.ID, 30)
	for i, e := range execs {
		e.Version = i % 3 // the draft (0), versions 1 and 2
	}
	h.insert(t, execs, 30)
	for _, v := range []int{0, 1, 2} {
		var want []*fn.Execution
		for _, e := range newestFirst(execs) {
			if e.Version == v {
				want = append(want, e)
			}
		}
		got, err := h.s.ListExecutions(h.ctx, f.ID, store.ExecQuery{Limit: 100, Version: v, VersionSet: true})
		if err != nil {
			t.Fatal(err)
		}
		assertExecutions(t, got, want)
	}
}

func testListLimit(t *testing.T, h *harness) {
	f := h.createFunction(t, newFunction("alpha"))
	created := newExecutions(f.ID, store.MaxExecLimit+100)
	h.insert(t, created, 500)
	execs := newestFirst(created)

	tests := []struct {
		name  string
		limit int
		want  int
	}{
		{"zero means the default", 0, store.DefaultExecLimit},
		{"negative means the default", -3, store.DefaultExecLimit},
		{"one", 1, 1},
		{"seven", 7, 7},
		{"exactly the cap", store.MaxExecLimit, store.MaxExecLimit},
		{"over the cap", 5000, store.MaxExecLimit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := h.s.ListExecutions(h.ctx, f.ID, store.ExecQuery{Limit: tc.limit})
			if err != nil {
				t.Fatalf("ListExecutions: %v", err)
			}
			assertExecutions(t, got, execs[:tc.want])
		})
	}
}

func testGetExecution(t *testing.T, h *harness) {
	f := h.createFunction(t, newFunction("alpha"))
	ok := newExecution(f.ID, fn.StatusSuccess, 1)
	ok.Event = json.RawMessage(`{ "b": [1, 2.5, "three", null, {"x": true}],
		"a": "héllo ✓ \u0000 \"quoted\"" }`)
	ok.Result = json.RawMessage(`  {"z": 1, "a": {"nested": [[], {}]}}  `)
	failed := newExecution(f.ID, fn.StatusError, 2)
	failed.Error.Stack = ""
	scalar := newExecution(f.ID, fn.StatusSuccess, 3)
	scalar.Result = json.RawMessage(`"just a string"`)
	scalar.Event, scalar.Logs = nil, ""
	array := newExecution(f.ID, fn.StatusSuccess, 4)
	array.Result = json.RawMessage(`[1, "two", {"three": 3}]`)
	rejected := newExecution(f.ID, fn.StatusRejected, 5)
	rejected.Result, rejected.Event, rejected.DurationMs, rejected.ColdStart, rejected.InitMs = nil, nil, 0, false, 0
	all := []*fn.Execution{ok, failed, scalar, array, rejected}
	h.insert(t, all, len(all))

	for _, want := range all {
		t.Run(string(want.Status)+"/"+want.ID, func(t *testing.T) {
			got, err := h.s.GetExecution(h.ctx, f.ID, want.ID)
			if err != nil {
				t.Fatalf("GetExecution: %v", err)
			}
			assertExecution(t, got, want, true)
		})
	}
}

func testPrune(t *testing.T, h *harness) {
	f := h.createFunction(t, newFunction("alpha"))
	other := h.createFunction(t, newFunction("bravo"))
	execs := newExecutions(f.ID, 30, fn.StatusSuccess, fn.StatusError)
	otherExecs := newExecutions(other.ID, 5)
	h.insert(t, execs[:15], 15)
	h.insert(t, otherExecs, 5)
	h.insert(t, execs[15:], 15)

	steps := []struct {
		keep    int
		deleted int64
		left    int
	}{
		{10, 20, 10},
		{10, 0, 10},
		{100, 0, 10},
		{3, 7, 3},
		{0, 3, 0},
		{0, 0, 0},
	}
	for _, st := range steps {
		n, err := h.s.PruneExecutions(h.ctx, f.ID, st.keep)
		if err != nil {
			t.Fatalf("PruneExecutions(keep %d): %v", st.keep, err)
		}
		if n != st.deleted {
			t.Errorf("PruneExecutions(keep %d) deleted %d, want %d", st.keep, n, st.deleted)
		}
		assertExecutions(t, h.listAll(t, f.ID, "", 1000), newestFirst(execs)[:st.left])
	}
	assertExecutions(t, h.listAll(t, other.ID, "", 1000), newestFirst(otherExecs))
}

// testRecordsOfUnknownFunction: a batch may hold records of a function
// deleted meanwhile (or by another server); they do not fail the rest of
// the batch.
func testRecordsOfUnknownFunction(t *testing.T, h *harness) {
	f := h.createFunction(t, newFunction("alpha"))
	ghost := newFunction("ghost")
	execs := newExecutions(f.ID, 6)
	mixed := append(append([]*fn.Execution{}, execs[:3]...), newExecutions(ghost.ID, 2)...)
	mixed = append(mixed, execs[3:]...)
	h.insert(t, mixed, len(mixed))
	assertExecutions(t, h.listAll(t, f.ID, "", 100), newestFirst(execs))
}

// testTextAndTimeFilter searches a function's executions by text (logs,
// error type and message, ASCII case ignored), by start time, with the
// other filters and page by page.
func testTextAndTimeFilter(t *testing.T, h *harness) {
	f := h.createFunction(t, newFunction("alpha"))
	execs := newExecutions(f.ID, 60, fn.StatusSuccess, fn.StatusError)
	for i, e := range execs {
		if i%7 == 3 {
			e.Logs += "found the NeEdLe here\n"
		}
	}
	h.insert(t, execs, 25)
	other := newExecutions(h.createFunction(t, newFunction("bravo")).ID, 10)
	for _, e := range other {
		e.Logs = "needle"
	}
	h.insert(t, other, 10)

	matching := func(keep func(*fn.Execution) bool) []*fn.Execution {
		var out []*fn.Execution
		for _, e := range newestFirst(execs) {
			if keep(e) {
				out = append(out, e)
			}
		}
		return out
	}
	contains := func(e *fn.Execution, s string) bool {
		s = strings.ToLower(s)
		in := strings.ToLower(e.Logs)
		if e.Error != nil {
			in += "\n" + strings.ToLower(e.Error.Type+"\n"+e.Error.Message)
		}
		return strings.Contains(in, s)
	}
	// all pages through q, two at a time.
	all := func(q store.ExecQuery) []*fn.Execution {
		t.Helper()
		var got []*fn.Execution
		q.Limit = 2
		for range 100 {
			page, err := h.s.ListExecutions(h.ctx, f.ID, q)
			if err != nil {
				t.Fatalf("ListExecutions(%+v): %v", q, err)
			}
			got = append(got, page...)
			if len(page) < q.Limit {
				return got
			}
			q.Before = page[len(page)-1].ID
		}
		t.Fatal("more than 100 pages")
		return nil
	}
	at := func(i int) time.Time { return execs[i].StartedAt }
	for _, tc := range []struct {
		name string
		q    store.ExecQuery
		want []*fn.Execution
	}{
		{"logs, any case", store.ExecQuery{Text: "needle"}, matching(func(e *fn.Execution) bool { return contains(e, "needle") })},
		{"error message", store.ExecQuery{Text: "FAILURE 1"}, matching(func(e *fn.Execution) bool { return contains(e, "failure 1") })},
		{"error type", store.ExecQuery{Text: "runtimeerror"}, matching(func(e *fn.Execution) bool { return e.Error != nil })},
		{"not in the stack", store.ExecQuery{Text: "line 2"}, nil},
		{"not in the event", store.ExecQuery{Text: `"tags"`}, nil},
		{"with a status", store.ExecQuery{Text: "needle", Status: fn.StatusError},
			matching(func(e *fn.Execution) bool { return contains(e, "needle") && e.Status == fn.StatusError })},
		{"since and until", store.ExecQuery{Since: at(10), Until: at(20)},
			matching(func(e *fn.Execution) bool { return !e.StartedAt.Before(at(10)) && e.StartedAt.Before(at(20)) })},
		{"text and times", store.ExecQuery{Text: "needle", Since: at(10)},
			matching(func(e *fn.Execution) bool { return contains(e, "needle") && !e.StartedAt.Before(at(10)) })},
		{"a pattern is text", store.ExecQuery{Text: "start .*"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assertExecutions(t, all(tc.q), tc.want)
		})
	}
}

// testTextScanBound: a text search reads no more than MaxTextScan
// executions; narrowing the time range reaches older ones.
func testTextScanBound(t *testing.T, h *harness) {
	f := h.createFunction(t, newFunction("alpha"))
	execs := newExecutions(f.ID, store.MaxTextScan+5)
	for _, e := range execs[:3] {
		e.Logs = "the oldest needle"
	}
	h.insert(t, execs, 500)
	got, err := h.s.ListExecutions(h.ctx, f.ID, store.ExecQuery{Text: "needle"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("a search of the newest %d found %d executions older than them", store.MaxTextScan, len(got))
	}
	got, err = h.s.ListExecutions(h.ctx, f.ID, store.ExecQuery{Text: "needle", Until: execs[10].StartedAt})
	if err != nil {
		t.Fatal(err)
	}
	assertExecutions(t, got, newestFirst(execs[:3]))
}
