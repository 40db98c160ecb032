package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/metrics"
)

// flakyStore is a RecordStore whose availability the test switches.
type flakyStore struct {
	mu      sync.Mutex
	down    bool  // fail with fn.ErrUnavailable
	refuse  error // fail with this instead, when set
	written []string
	tries   int
}

func (s *flakyStore) InsertExecutions(_ context.Context, execs []*fn.Execution) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tries++
	switch {
	case s.down:
		return fmt.Errorf("test store: %w", fn.ErrUnavailable)
	case s.refuse != nil:
		return s.refuse
	}
	for _, e := range execs {
		s.written = append(s.written, e.ID)
	}
	return nil
}

func (s *flakyStore) PruneExecutions(context.Context, string, int) (int64, error) { return 0, nil }

func (s *flakyStore) set(down bool, refuse error) {
	s.mu.Lock()
	s.down, s.refuse = down, refuse
	s.mu.Unlock()
}

func (s *flakyStore) ids() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.written)
}

func (s *flakyStore) attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tries
}

// startRecorder runs a recorder on st with the given buffer limit; the
// ticker is off, so only batches, flushes and retries write.
func startRecorder(t *testing.T, st RecordStore, limit int) *recorder {
	t.Helper()
	r := newRecorder(Config{Records: st, Metrics: metrics.NewRecorder(nil), RecordBuffer: limit, BatchSize: 4, Retention: 1000},
		slog.New(slog.DiscardHandler))
	go r.run()
	t.Cleanup(func() { r.close(context.Background()) })
	return r
}

func records(n int) []*fn.Execution {
	out := make([]*fn.Execution, n)
	for i := range out {
		out[i] = &fn.Execution{ID: fn.NewID(), FunctionID: "f", Status: fn.StatusSuccess}
	}
	return out
}

func idsOf(execs []*fn.Execution) []string {
	out := make([]string, len(execs))
	for i, e := range execs {
		out[i] = e.ID
	}
	return out
}

// waitUntil polls cond for up to 20s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRecorderKeepsRecordsWhileStoreIsUnavailable(t *testing.T) {
	st := &flakyStore{down: true}
	r := startRecorder(t, st, 100)
	execs := records(10)
	for _, e := range execs {
		r.add(e)
	}
	if err := r.flush(t.Context()); !errors.Is(err, fn.ErrUnavailable) {
		t.Fatalf("flush while unavailable = %v, want fn.ErrUnavailable", err)
	}
	// It keeps trying by itself.
	tries := st.attempts()
	waitUntil(t, "a retry", func() bool { return st.attempts() > tries })

	st.set(false, nil)
	waitUntil(t, "the kept records to be written", func() bool { return len(st.ids()) == len(execs) })
	if got, want := st.ids(), idsOf(execs); !slices.Equal(got, want) {
		t.Errorf("written %v, want %v (in order)", got, want)
	}
	if n := r.dropped.Load(); n != 0 {
		t.Errorf("dropped %d, want 0", n)
	}
	if err := r.flush(t.Context()); err != nil {
		t.Errorf("flush after recovery = %v", err)
	}
}

func TestRecorderDropsTheOldestPastItsLimit(t *testing.T) {
	const limit = 8
	st := &flakyStore{down: true}
	r := startRecorder(t, st, limit)
	execs := records(30)
	for i, e := range execs {
		r.add(e)
		if i%5 == 4 {
			r.flush(t.Context()) // fails; the records stay
		}
	}
	r.flush(t.Context())
	if n := r.dropped.Load(); n != int64(len(execs)-limit) {
		t.Errorf("dropped %d, want %d", n, len(execs)-limit)
	}

	st.set(false, nil)
	if err := r.flush(t.Context()); err != nil {
		t.Fatalf("flush after recovery: %v", err)
	}
	if got, want := st.ids(), idsOf(execs[len(execs)-limit:]); !slices.Equal(got, want) {
		t.Errorf("written %v, want the newest %d: %v", got, limit, want)
	}
}

func TestRecorderBufferFullDropsTheOldest(t *testing.T) {
	r := newRecorder(Config{Records: &flakyStore{}, Metrics: metrics.NewRecorder(nil), RecordBuffer: 3},
		slog.New(slog.DiscardHandler)) // not running: nothing reads the buffer
	execs := records(5)
	for _, e := range execs {
		r.add(e)
	}
	if n := r.dropped.Load(); n != 2 {
		t.Errorf("dropped %d, want 2", n)
	}
	var left []*fn.Execution
	for range 3 {
		left = append(left, <-r.in)
	}
	if got, want := idsOf(left), idsOf(execs[2:]); !slices.Equal(got, want) {
		t.Errorf("buffer holds %v, want the newest %v", got, want)
	}
}

func TestRecorderDropsABatchTheStoreRefuses(t *testing.T) {
	refused := fmt.Errorf("test store: %w", fn.ErrConflict)
	st := &flakyStore{refuse: refused}
	r := startRecorder(t, st, 100)
	for _, e := range records(3) {
		r.add(e)
	}
	if err := r.flush(t.Context()); !errors.Is(err, fn.ErrConflict) {
		t.Fatalf("flush = %v, want the store's error", err)
	}
	if n := r.dropped.Load(); n != 3 {
		t.Errorf("dropped %d, want 3", n)
	}
	// Not retried: nothing is kept.
	st.set(false, nil)
	if err := r.flush(t.Context()); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if got := st.ids(); len(got) != 0 {
		t.Errorf("refused records written later: %v", got)
	}
}

func TestRecorderCloseCountsWhatItCannotWrite(t *testing.T) {
	st := &flakyStore{down: true}
	r := newRecorder(Config{Records: st, Metrics: metrics.NewRecorder(nil), RecordBuffer: 100},
		slog.New(slog.DiscardHandler))
	go r.run()
	for _, e := range records(5) {
		r.add(e)
	}
	if err := r.close(t.Context()); err != nil {
		t.Fatalf("close: %v", err)
	}
	if n := r.dropped.Load(); n != 5 {
		t.Errorf("dropped %d, want 5", n)
	}
}

// The stages of an async call that reach the recorder within one batch
// are written once: the latest.
func TestRecorderWritesTheLatestStageOfACallOnce(t *testing.T) {
	st := &flakyStore{}
	r := startRecorder(t, st, 100)
	id, other := fn.NewID(), fn.NewID()
	for _, ex := range []*fn.Execution{
		{ID: id, FunctionID: "f", Status: fn.StatusQueued},
		{ID: id, FunctionID: "f", Status: fn.StatusRunning, Attempt: 1},
		{ID: other, FunctionID: "f", Status: fn.StatusSuccess},
		{ID: id, FunctionID: "f", Status: fn.StatusError, Attempt: 1},
	} {
		r.add(ex)
	}
	if err := r.flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := st.ids(); !slices.Equal(got, []string{id, other}) {
		t.Errorf("written %v, want each call once: %v", got, []string{id, other})
	}
}

// TestRecorderHoldsYoungStagesForTheirEnd: a queued or running record of
// an async call waits (up to two flush intervals) for the call's end, so
// that a call that ends soon is written once; an older one is written;
// at close everything is.
func TestRecorderHoldsYoungStagesForTheirEnd(t *testing.T) {
	st := &flakyStore{}
	r := newRecorder(Config{Records: st, Metrics: metrics.NewRecorder(nil), RecordBuffer: 100, Retention: 1000, FlushInterval: time.Hour},
		slog.New(slog.DiscardHandler))
	go r.run()
	flush := func() {
		t.Helper()
		if err := r.flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	soon, old, last := fn.NewID(), fn.NewID(), fn.NewID()
	r.add(&fn.Execution{ID: soon, FunctionID: "f", Status: fn.StatusQueued, StartedAt: time.Now()})
	flush()
	if got := st.ids(); len(got) != 0 {
		t.Fatalf("a queued record written at once: %v", got)
	}
	r.add(&fn.Execution{ID: soon, FunctionID: "f", Status: fn.StatusRunning, Attempt: 1, StartedAt: time.Now()})
	r.add(&fn.Execution{ID: soon, FunctionID: "f", Status: fn.StatusSuccess, Attempt: 1, StartedAt: time.Now()})
	r.add(&fn.Execution{ID: old, FunctionID: "f", Status: fn.StatusQueued, StartedAt: time.Now().Add(-3 * time.Hour)})
	flush()
	if got := st.ids(); !slices.Equal(got, []string{soon, old}) {
		t.Errorf("written %v, want the call that ended once, then the one queued for hours: %v", got, []string{soon, old})
	}
	r.add(&fn.Execution{ID: last, FunctionID: "f", Status: fn.StatusQueued, StartedAt: time.Now()})
	if err := r.close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := st.ids(); !slices.Equal(got, []string{soon, old, last}) {
		t.Errorf("after close, written %v, want the young queued record too", got)
	}
}
