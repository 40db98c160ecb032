package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/metrics"
)

// TestRecorderBoundsBytesForAnUnavailableStore: while the store is down,
// the records kept hold no more than RecordBufferBytes: records arriving
// past it lose their event and result (which says so in their logs) before
// any whole record is dropped, and all of them are written once the store
// is back.
// keepingStore is a flakyStore that keeps the records it writes.
type keepingStore struct {
	*flakyStore
	mu   sync.Mutex
	kept []*fn.Execution
}

func (s *keepingStore) InsertExecutions(ctx context.Context, execs []*fn.Execution) error {
	if err := s.flakyStore.InsertExecutions(ctx, execs); err != nil {
		return err
	}
	s.mu.Lock()
	s.kept = append(s.kept, execs...)
	s.mu.Unlock()
	return nil
}

// TestRecorderBoundsBytesForAnUnavailableStore: while the store is down,
// the records kept hold no more than RecordBufferBytes: records arriving
// past it lose their event and result (which their logs say) before any
// whole record is dropped, and all of them are written once the store is
// back.
func TestRecorderBoundsBytesForAnUnavailableStore(t *testing.T) {
	const bound = 1 << 20
	st := &keepingStore{flakyStore: &flakyStore{down: true}}
	r := newRecorder(Config{Records: st, Metrics: metrics.NewRecorder(nil), RecordBuffer: 1000, RecordBufferBytes: bound, BatchSize: 4, Retention: 1000},
		slog.New(slog.DiscardHandler))
	go r.run()
	t.Cleanup(func() { r.close(context.Background()) })

	r.add(records(1)[0])
	r.flush(t.Context()) // fails: the store is known to be down
	big := json.RawMessage(`"` + strings.Repeat("x", 100<<10) + `"`)
	execs := records(20)
	for i, e := range execs {
		e.Event, e.Result = big, big
		r.add(e)
		if i%3 == 2 {
			r.flush(t.Context())
		}
	}
	r.flush(t.Context()) // run has taken every record; held is read after its reply
	if r.held > bound {
		t.Errorf("records held %d bytes, over the %d bound", r.held, bound)
	}
	if n := r.dropped.Load(); n != 0 {
		t.Errorf("dropped %d whole records, want none: shedding events and results makes room", n)
	}

	st.set(false, nil)
	if err := r.flush(t.Context()); err != nil {
		t.Fatalf("flush after recovery: %v", err)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.kept) != 21 {
		t.Fatalf("wrote %d records, want 21", len(st.kept))
	}
	whole, shed := 0, 0
	for _, ex := range st.kept[1:] {
		switch {
		case bytes.Equal(ex.Event, big) && bytes.Equal(ex.Result, big):
			whole++
		case ex.Event == nil && ex.Result == nil && strings.Contains(ex.Logs, "event and result were dropped"):
			shed++
		default:
			t.Fatalf("record %s: event %d bytes, result %d bytes, logs %q", ex.ID, len(ex.Event), len(ex.Result), ex.Logs)
		}
	}
	if whole == 0 || shed == 0 || whole > bound/(200<<10) {
		t.Errorf("%d records kept whole, %d shed: want the first few whole, within the bound, and the rest shed", whole, shed)
	}
	if r.held != 0 {
		t.Errorf("after writing everything, %d bytes are counted as held", r.held)
	}
}
