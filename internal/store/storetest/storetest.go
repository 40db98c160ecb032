package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/store"
)

// Opener returns a new, empty Store and a reopen function that opens
// another Store on the same underlying database. reopen closes nothing:
// the suite closes the first Store before it calls reopen. The suite closes
// every Store it is given, so open must not.
type Opener func(t *testing.T) (s store.Store, reopen func(t *testing.T) store.Store)

// Run runs the conformance suite, each case as a subtest on a fresh Store.
func Run(t *testing.T, open Opener) {
	cases := []struct {
		name string
		run  func(t *testing.T, h *harness)
	}{
		{"function round trip", testFunctionRoundTrip},
		{"get function by name", testGetByName},
		{"not found", testNotFound},
		{"duplicate name", testDuplicateName},
		{"concurrent creates of one name", testConcurrentCreates},
		{"update", testUpdate},
		{"update with stale version", testUpdateStale},
		{"update to a taken name", testUpdateTakenName},
		{"concurrent updates of one version", testConcurrentUpdates},
		{"delete removes executions", testDeleteRemovesExecutions},
		{"insert batches and list newest first", testInsertAndList},
		{"records of an unknown function", testRecordsOfUnknownFunction},
		{"pagination with before", testPagination},
		{"status filter", testStatusFilter},
		{"version filter", testVersionFilter},
		{"list limit default and cap", testListLimit},
		{"get execution round trip", testGetExecution},
		{"prune keeps the newest", testPrune},
		{"concurrent readers and writers", testConcurrentReadWrite},
		{"restart persistence", testRestart},
		{"metric minutes (optional MetricsStore)", testMetricMinutes},
		{"code, layers and build round trip", testCodeRoundTrip},
		{"blobs", testBlobs},
		{"url settings round trip", testURLRoundTrip},
		{"test events round trip", testTestEventsRoundTrip},
		{"text and time filters", testTextAndTimeFilter},
		{"text search is a bounded scan", testTextScanBound},
		{"async settings and schedules round trip", testAsyncRoundTrip},
		{"attempt round trip", testAttemptRoundTrip},
		{"stages of one id: the later (attempt, stage) wins", testStageUpsert},
		{"status filter for queued and running", testStageStatusFilter},
		{"versions", testVersions},
		{"aliases", testAliases},
		{"concurrent updates of one alias revision", testConcurrentAliasUpdates},
		{"delete removes versions and aliases", testDeleteRemovesVersionsAndAliases},
		{"api keys", testKeys},
		{"secrets", testSecrets},
		{"concurrent updates of one secret version", testConcurrentSecretUpdates},
		{"audit log", testAudit},
		{"audit limit default", testAuditLimit},
		{"concurrent audit appends", testConcurrentAudit},
		{"keys, secrets and audit entries without their key", testAuthInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, newHarness(t, open))
		})
	}
}

// harness holds the Store under test and closes it at the end.
type harness struct {
	ctx    context.Context
	s      store.Store
	reopen func(t *testing.T) store.Store
	closed bool
	mu     sync.Mutex
}

func newHarness(t *testing.T, open Opener) *harness {
	t.Helper()
	s, reopen := open(t)
	if s == nil {
		t.Fatal("open returned a nil Store")
	}
	h := &harness{ctx: t.Context(), s: s, reopen: reopen}
	t.Cleanup(func() { h.close(t) })
	return h
}

func (h *harness) close(t *testing.T) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	if err := h.s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// restart closes the Store and opens another on the same database.
func (h *harness) restart(t *testing.T) {
	t.Helper()
	if h.reopen == nil {
		t.Fatal("open returned no reopen function")
	}
	h.close(t)
	s := h.reopen(t)
	if s == nil {
		t.Fatal("reopen returned a nil Store")
	}
	h.mu.Lock()
	h.s, h.closed = s, false
	h.mu.Unlock()
}

// epoch is a base time in whole milliseconds.
var epoch = time.Date(2025, 3, 14, 15, 9, 26, 535_000_000, time.UTC)

// newFunction returns a valid function with every field set.
func newFunction(name string) *fn.Function {
	return &fn.Function{
		ID:      fn.NewID(),
		Name:    name,
		Runtime: runtime.Python,
		Handler: "main.handler",
		Files: map[string]string{
			"main.py":     "def handler(event, context):\n    return {\"echo\": event}\n",
			"lib/util.py": "GREETING = \"héllo ✓ \\u0000 <&>\"\n",
		},
		Env:          map[string]string{"GREETING": "hello", "EMPTY": "", "QUOTED": `a "b" \c`},
		Timeout:      3000,
		Memory:       128,
		Driver:       "sandbox",
		MaxInstances: 7,
		Concurrency:  1,
		URL: &fn.URLConfig{Enabled: true, Auth: fn.URLAuthNone, CORS: &fn.CORS{
			AllowOrigins: []string{"https://app.example.com", "http://localhost:3000"}, AllowMethods: []string{"GET", "POST"},
			AllowHeaders: []string{"content-type", "x-trace"}, ExposeHeaders: []string{"x-request-id"},
			MaxAge: 600, AllowCredentials: true,
		}},
		Async: &fn.AsyncConfig{
			MaxRetries: ptr(1), MaxEventAgeSeconds: 3600, RetryBackoff: "30s",
			OnSuccess: &fn.Destination{Function: "audit"},
			OnFailure: &fn.Destination{URL: "https://hooks.example.com/failed?x=1"},
		},
		Schedules: []fn.Schedule{
			{Name: "nightly", Cron: "0 3 * * *", Timezone: "Europe/Paris",
				Event:   json.RawMessage(`{"kind": "nightly", "$oid": "x", "big": 123456789012345678901234567890}`),
				Enabled: ptr(false), CatchUp: "latest"},
			{Name: "often", Rate: "5m", Qualifier: "live"},
		},
		Revision:  1,
		CreatedAt: epoch,
		UpdatedAt: epoch.Add(1500 * time.Millisecond),
	}
}

// newExecution returns a record of function fid; i varies its content.
func newExecution(fid string, status fn.Status, i int) *fn.Execution {
	e := &fn.Execution{
		ID:         fn.NewID(),
		FunctionID: fid,
		Version:    1 + i%3,
		Status:     status,
		Event:      json.RawMessage(fmt.Sprintf(`{"n": %d, "tags": ["a", "b"]}`, i)),
		Logs:       fmt.Sprintf("start %d\nend %d\n", i, i),
		StartedAt:  epoch.Add(time.Duration(i) * time.Millisecond),
		DurationMs: 12.25 + float64(i),
		ColdStart:  i%4 == 0,
		QueueMs:    0.5,
		// Peak memory in KiB, past 2^32 for some records.
		PeakMemoryKiB: int64(i) * 98_765_432,
	}
	if i%2 == 1 {
		e.Trigger = fn.TriggerHTTP
	}
	if e.ColdStart {
		e.InitMs = 85.75
	}
	if i%3 != 2 { // when each line began; some records have none
		e.LogTimes = []int{0, 3 + i%40}
	}
	if status == fn.StatusSuccess {
		e.Result = json.RawMessage(fmt.Sprintf(`{"ok": true, "n": %d}`, i))
	} else {
		e.Error = &fn.ErrorInfo{Type: "RuntimeError", Message: fmt.Sprintf("failure %d", i), Stack: "line 1\nline 2"}
	}
	return e
}

// newExecutions returns n records of fid, cycling through statuses.
func newExecutions(fid string, n int, statuses ...fn.Status) []*fn.Execution {
	if len(statuses) == 0 {
		statuses = []fn.Status{fn.StatusSuccess}
	}
	execs := make([]*fn.Execution, n)
	for i := range execs {
		execs[i] = newExecution(fid, statuses[i%len(statuses)], i)
	}
	return execs
}

func (h *harness) createFunction(t *testing.T, f *fn.Function) *fn.Function {
	t.Helper()
	if err := h.s.CreateFunction(h.ctx, f); err != nil {
		t.Fatalf("CreateFunction(%s): %v", f.Name, err)
	}
	return f
}

func (h *harness) insert(t *testing.T, execs []*fn.Execution, batch int) {
	t.Helper()
	for i := 0; i < len(execs); i += batch {
		if err := h.s.InsertExecutions(h.ctx, execs[i:min(i+batch, len(execs))]); err != nil {
			t.Fatalf("InsertExecutions: %v", err)
		}
	}
}

// listAll pages through a function's history with the Before cursor.
func (h *harness) listAll(t *testing.T, fid string, status fn.Status, page int) []*fn.Execution {
	t.Helper()
	var all []*fn.Execution
	q := store.ExecQuery{Limit: page, Status: status}
	for range 100_000 {
		got, err := h.s.ListExecutions(h.ctx, fid, q)
		if err != nil {
			t.Fatalf("ListExecutions(%+v): %v", q, err)
		}
		if len(got) > page {
			t.Fatalf("ListExecutions(%+v) returned %d rows, more than the limit", q, len(got))
		}
		if len(got) == 0 {
			return all
		}
		if q.Before != "" && got[0].ID >= q.Before {
			t.Fatalf("ListExecutions(%+v) returned %s, not below the cursor", q, got[0].ID)
		}
		all = append(all, got...)
		q.Before = got[len(got)-1].ID
	}
	t.Fatal("ListExecutions never ran out of pages")
	return nil
}

// newestFirst returns execs reversed (they are created oldest first).
func newestFirst(execs []*fn.Execution) []*fn.Execution {
	out := make([]*fn.Execution, len(execs))
	for i, e := range execs {
		out[len(execs)-1-i] = e
	}
	return out
}

func assertFunction(t *testing.T, got, want *fn.Function) {
	t.Helper()
	if got == nil {
		t.Fatalf("function %s: got nil", want.Name)
	}
	if got.ID != want.ID || got.Name != want.Name || got.Runtime != want.Runtime ||
		got.Handler != want.Handler || got.Timeout != want.Timeout || got.Memory != want.Memory ||
		got.Driver != want.Driver || got.MaxInstances != want.MaxInstances || got.Revision != want.Revision ||
		got.Network != want.Network || got.MinInstances != want.MinInstances ||
		got.Concurrency != want.Concurrency || got.KeepAlive != want.KeepAlive {
		t.Errorf("function scalars:\n got %+v\nwant %+v", got, want)
	}
	if got.Code != "" {
		t.Errorf("function %s: Code = %q, want it never stored", want.Name, got.Code)
	}
	if !maps.Equal(got.Files, want.Files) {
		t.Errorf("function %s: Files = %q, want %q", want.Name, got.Files, want.Files)
	}
	if !maps.Equal(got.Env, want.Env) {
		t.Errorf("function %s: Env = %q, want %q", want.Name, got.Env, want.Env)
	}
	type code struct {
		Info   *fn.CodeInfo
		Layers []string
		Build  *fn.BuildSettings
		Status *fn.BuildStatus
	}
	gc, wc := code{got.CodeInfo, got.Layers, got.Build, got.BuildStatus}, code{want.CodeInfo, want.Layers, want.Build, want.BuildStatus}
	if gb, wb := mustJSON(t, gc), mustJSON(t, wc); gb != wb {
		t.Errorf("function %s: code, layers and build:\n got %s\nwant %s", want.Name, gb, wb)
	}
	if gu, wu := mustJSON(t, got.URL), mustJSON(t, want.URL); gu != wu {
		t.Errorf("function %s: URL:\n got %s\nwant %s", want.Name, gu, wu)
	}
	if ga, wa := mustJSON(t, got.Async), mustJSON(t, want.Async); ga != wa {
		t.Errorf("function %s: Async:\n got %s\nwant %s", want.Name, ga, wa)
	}
	// Schedules compare as values: events as JSON, NextRun never stored.
	if len(got.Schedules) != len(want.Schedules) {
		t.Errorf("function %s: %d schedules, want %d", want.Name, len(got.Schedules), len(want.Schedules))
	} else {
		for i := range want.Schedules {
			g, w := got.Schedules[i], want.Schedules[i]
			if !jsonEqual(g.Event, w.Event) {
				t.Errorf("function %s: schedule %d: Event = %s, want %s", want.Name, i, g.Event, w.Event)
			}
			if g.NextRun != nil {
				t.Errorf("function %s: schedule %d: NextRun = %v, want it never stored", want.Name, i, g.NextRun)
			}
			g.Event, w.Event, w.NextRun = nil, nil, nil
			if gs, ws := mustJSON(t, g), mustJSON(t, w); gs != ws {
				t.Errorf("function %s: schedule %d:\n got %s\nwant %s", want.Name, i, gs, ws)
			}
		}
	}
	// Test events compare by name and by event as JSON.
	if len(got.TestEvents) != len(want.TestEvents) {
		t.Errorf("function %s: %d test events, want %d", want.Name, len(got.TestEvents), len(want.TestEvents))
	} else {
		for i, w := range want.TestEvents {
			if g := got.TestEvents[i]; g.Name != w.Name || !jsonEqual(g.Event, w.Event) {
				t.Errorf("function %s: test event %d = %q %s, want %q %s", want.Name, i, g.Name, g.Event, w.Name, w.Event)
			}
		}
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("function %s: CreatedAt = %v, want %v", want.Name, got.CreatedAt, want.CreatedAt)
	}
	if !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Errorf("function %s: UpdatedAt = %v, want %v", want.Name, got.UpdatedAt, want.UpdatedAt)
	}
}

// assertExecution compares two records; the event only when withEvent,
// and otherwise got must have none.
func assertExecution(t *testing.T, got, want *fn.Execution, withEvent bool) {
	t.Helper()
	if got == nil {
		t.Fatalf("execution %s: got nil", want.ID)
	}
	if got.ID != want.ID || got.FunctionID != want.FunctionID || got.Version != want.Version ||
		got.Status != want.Status || got.Logs != want.Logs || got.DurationMs != want.DurationMs ||
		got.ColdStart != want.ColdStart || got.InitMs != want.InitMs || got.QueueMs != want.QueueMs ||
		got.PeakMemoryKiB != want.PeakMemoryKiB || got.Trigger != want.Trigger || got.Attempt != want.Attempt {
		t.Errorf("execution scalars:\n got %+v\nwant %+v", got, want)
	}
	if !got.StartedAt.Equal(want.StartedAt) {
		t.Errorf("execution %s: StartedAt = %v, want %v", want.ID, got.StartedAt, want.StartedAt)
	}
	if !jsonEqual(got.Result, want.Result) {
		t.Errorf("execution %s: Result = %s, want %s", want.ID, got.Result, want.Result)
	}
	if !reflect.DeepEqual(got.Error, want.Error) {
		t.Errorf("execution %s: Error = %+v, want %+v", want.ID, got.Error, want.Error)
	}
	if !slices.Equal(got.LogTimes, want.LogTimes) {
		t.Errorf("execution %s: LogTimes = %v, want %v", want.ID, got.LogTimes, want.LogTimes)
	}
	switch {
	case withEvent && !jsonEqual(got.Event, want.Event):
		t.Errorf("execution %s: Event = %s, want %s", want.ID, got.Event, want.Event)
	case !withEvent && len(got.Event) != 0:
		t.Errorf("execution %s: listed with Event %s, want none", want.ID, got.Event)
	}
}

func assertExecutions(t *testing.T, got, want []*fn.Execution) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d executions, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] == nil || got[i].ID != want[i].ID {
			t.Fatalf("execution %d is %s, want %s", i, idOf(got[i]), want[i].ID)
		}
		assertExecution(t, got[i], want[i], false)
	}
}

func idOf(e *fn.Execution) string {
	if e == nil {
		return "<nil>"
	}
	return e.ID
}

// jsonEqual reports whether a and b are the same JSON value; two empty
// messages are equal.
func jsonEqual(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func ptr[T any](v T) *T { return &v }

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
