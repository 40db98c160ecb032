package engine

import (
	"context"
	"errors"
	"log/slog"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/metrics"
)

// RecordStore is the part of the store the engine writes records to.
type RecordStore interface {
	InsertExecutions(ctx context.Context, execs []*fn.Execution) error
	PruneExecutions(ctx context.Context, functionID string, keep int) (int64, error)
}

// recorder writes execution records to the store in batches from one
// goroutine, off the invoke path. Records wait in a bounded buffer. When the
// store falls so far behind that the buffer fills, the oldest record waiting
// is dropped and counted to make room, rather than slowing calls down.
//
// When the store is unavailable (a write fails with fn.ErrUnavailable or
// times out) the records are kept and the write is tried again with a
// growing backoff; past limit records kept, the oldest are dropped and
// counted. Everything kept is written once the store is back.
type recorder struct {
	store    RecordStore
	metrics  *metrics.Recorder
	log      *slog.Logger
	interval time.Duration
	// stageHold is how long a record of an async call's stage that is
	// not final may wait for the call's end before it is written
	// (2 × interval).
	stageHold time.Duration
	batch     int
	keep      int
	limit     int // records kept for an unavailable store
	bytes     int // what they may hold
	in        chan *fn.Execution
	flushes   chan chan error
	done      chan struct{}
	finished  chan struct{}
	dropped   atomic.Int64
	deleted   sync.Map // function id → struct{}: skip their records
	unpruned  map[string]int

	// Owned by run: the wait before the next try while the store is
	// unavailable (0 while it is available), and since when it is; what
	// the records pending hold.
	backoff time.Duration
	outage  time.Time
	held    int
}

// Waits between tries while the store is unavailable.
const (
	minRetry = 250 * time.Millisecond
	maxRetry = 5 * time.Second
)

func newRecorder(cfg Config, log *slog.Logger) *recorder {
	r := &recorder{
		store:     cfg.Records,
		metrics:   cfg.Metrics,
		log:       log,
		interval:  cfg.FlushInterval,
		stageHold: 2 * cfg.FlushInterval,
		batch:     cfg.BatchSize,
		keep:      cfg.Retention,
		flushes:   make(chan chan error),
		done:      make(chan struct{}),
		finished:  make(chan struct{}),
		unpruned:  make(map[string]int),
	}
	if r.batch == 0 {
		r.batch = 512
	}
	r.limit = cfg.RecordBuffer
	if r.limit == 0 {
		r.limit = 1 << 16
	}
	r.bytes = cfg.RecordBufferBytes
	if r.bytes == 0 {
		r.bytes = 256 << 20
	}
	r.in = make(chan *fn.Execution, r.limit)
	return r
}

// recordSize is about what ex holds in memory.
func recordSize(ex *fn.Execution) int {
	n := 256 + len(ex.Event) + len(ex.Result) + len(ex.Logs)
	if ex.Error != nil {
		n += len(ex.Error.Type) + len(ex.Error.Message) + len(ex.Error.Stack)
	}
	return n
}

// shedNote ends the logs of a record kept without its event and result.
const shedNote = "\n[nimbus: this record's event and result were dropped: the store was unavailable and the record buffer full]\n"

// push appends ex to pending. While the store is unavailable and what is
// held is past its bound, ex keeps no event or result: losing those is
// better than losing whole records.
func (r *recorder) push(pending []*fn.Execution, ex *fn.Execution) []*fn.Execution {
	size := recordSize(ex)
	if r.backoff > 0 && r.held+size > r.bytes && (ex.Event != nil || ex.Result != nil) {
		shed := *ex
		shed.Event, shed.Result = nil, nil
		shed.Logs += shedNote
		ex = &shed
		size = recordSize(ex)
	}
	r.held += size
	return append(pending, ex)
}

func (r *recorder) add(ex *fn.Execution) {
	for {
		select {
		case r.in <- ex:
			return
		default:
		}
		// Full: make room by dropping the oldest record waiting.
		select {
		case <-r.in:
			r.drop(1, "the store is not keeping up")
		default:
		}
	}
}

// drop counts n records lost, logging when the total passes a power of two.
func (r *recorder) drop(n int, why string) {
	if n <= 0 {
		return
	}
	total := r.dropped.Add(int64(n))
	if bits.Len64(uint64(total)) > bits.Len64(uint64(total-int64(n))) {
		r.log.Warn("execution records dropped: "+why, "dropped", total)
	}
}

func (r *recorder) forget(functionID string) { r.deleted.Store(functionID, struct{}{}) }

func (r *recorder) run() {
	defer close(r.finished)
	var tick <-chan time.Time
	if r.interval > 0 {
		t := time.NewTicker(r.interval)
		defer t.Stop()
		tick = t.C
	}
	var retry <-chan time.Time // set while a try is due
	pending := make([]*fn.Execution, 0, r.batch)
	for {
		select {
		case ex := <-r.in:
			pending = r.hold(r.push(pending, ex))
			if len(pending) >= r.batch && r.backoff == 0 {
				pending, _ = r.write(pending)
			}
		case <-tick:
			if r.backoff == 0 {
				pending, _ = r.writeDue(pending)
			}
		case <-retry:
			retry = nil
			pending, _ = r.writeDue(r.drain(pending))
		case reply := <-r.flushes:
			// A flush tries now, even while waiting to retry: the store
			// may be back, and whoever asked wants the records.
			var err error
			pending, err = r.writeDue(r.drain(pending))
			reply <- err
		case <-r.done:
			pending, _ = r.write(r.drain(pending))
			if len(pending) > 0 {
				r.log.Error("execution records lost: the store is unavailable at shutdown", "records", len(pending))
				r.drop(len(pending), "the store is unavailable at shutdown")
			}
			return
		}
		if r.backoff > 0 && retry == nil {
			retry = time.After(r.backoff)
		}
	}
}

// drain moves every buffered record into pending, writing full batches
// while the store is available.
func (r *recorder) drain(pending []*fn.Execution) []*fn.Execution {
	for {
		select {
		case ex := <-r.in:
			pending = r.hold(r.push(pending, ex))
			if len(pending) >= r.batch && r.backoff == 0 {
				pending, _ = r.write(pending)
			}
		default:
			return pending
		}
	}
}

// hold keeps at most limit records, holding at most r.bytes, for an
// unavailable store, dropping the oldest.
func (r *recorder) hold(pending []*fn.Execution) []*fn.Execution {
	if r.backoff == 0 {
		return pending
	}
	n := max(len(pending)-r.limit, 0)
	for _, ex := range pending[:n] {
		r.held -= recordSize(ex)
	}
	for n < len(pending)-1 && r.held > r.bytes {
		r.held -= recordSize(pending[n])
		n++
	}
	if n == 0 {
		return pending
	}
	clear(pending[:n])
	r.drop(n, "the store is unavailable and the buffer is full")
	return pending[n:]
}

// writeDue writes what is due of pending (see due) and returns what is
// left: what the store did not take, then what was held back.
func (r *recorder) writeDue(pending []*fn.Execution) ([]*fn.Execution, error) {
	due, young := r.due(pending)
	left, err := r.write(due)
	return append(left, young...), err
}

// due splits pending into the records to write now and those of async
// calls' stages that are not final and younger than r.stageHold, held
// back for a later write: the call may end before then, and its final
// record replace them, so that a call is written once rather than two
// or three times. Only the newest stage of each call is kept.
func (r *recorder) due(pending []*fn.Execution) (due, young []*fn.Execution) {
	staged := false
	for _, ex := range pending {
		if ex.Attempt > 0 || !ex.Status.Final() {
			staged = true
			break
		}
	}
	if !staged {
		return pending, nil
	}
	newest := newestStages(pending)
	if len(newest) < len(pending) {
		// The records replaced are no longer held.
		kept := make(map[*fn.Execution]bool, len(newest))
		for _, ex := range newest {
			kept[ex] = true
		}
		for _, ex := range pending {
			if !kept[ex] {
				r.held -= recordSize(ex)
			}
		}
		clear(pending[len(newest):])
		pending = append(pending[:0], newest...)
	}
	if r.stageHold <= 0 {
		return pending, nil
	}
	cutoff := time.Now().Add(-r.stageHold)
	due = pending[:0]
	for _, ex := range pending {
		if !ex.Status.Final() && ex.StartedAt.After(cutoff) {
			young = append(young, ex)
		} else {
			due = append(due, ex)
		}
	}
	clear(pending[len(due):])
	return due, young
}

// write writes pending, oldest first, in batches. It returns what is left:
// nothing, unless the store is unavailable, in which case the records not
// yet written are kept for a later try and the error is returned. A batch
// that fails otherwise is dropped and counted; the first such error is
// returned.
func (r *recorder) write(pending []*fn.Execution) ([]*fn.Execution, error) {
	all := pending
	var firstErr error
	for len(pending) > 0 {
		n := min(len(pending), r.batch)
		err := r.writeBatch(pending[:n])
		if transient(err) {
			r.unavailable(err, len(pending))
			// What arrived before the store was known to be down may
			// exceed the bound too.
			return r.hold(pending), err
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
		for _, ex := range pending[:n] {
			r.held -= recordSize(ex)
		}
		clear(pending[:n])
		pending = pending[n:]
	}
	if r.backoff > 0 {
		r.log.Info("store available again: execution records written", "outage", time.Since(r.outage).Round(time.Millisecond))
		r.backoff = 0
	}
	return all[:0], firstErr
}

// transient reports whether a failed write is worth trying again.
func transient(err error) bool {
	return errors.Is(err, fn.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
}

// unavailable notes a failed try and sets the wait before the next.
func (r *recorder) unavailable(err error, kept int) {
	if r.backoff == 0 {
		r.outage = time.Now()
		r.backoff = minRetry
		r.log.Warn("store unavailable: keeping execution records and retrying", "records", kept, "limit", r.limit, "error", err)
		return
	}
	r.backoff = min(2*r.backoff, maxRetry)
	r.log.Debug("store still unavailable", "records", kept, "retry", r.backoff, "error", err)
}

// writeBatch writes one batch, skipping records of deleted functions. A
// batch that fails for a reason other than unavailability is dropped.
func (r *recorder) writeBatch(pending []*fn.Execution) error {
	batch := pending[:0:0]
	staged := false // records of async calls' stages: several may share an id
	for _, ex := range pending {
		if _, gone := r.deleted.Load(ex.FunctionID); !gone {
			batch = append(batch, ex)
			staged = staged || ex.Attempt > 0 || !ex.Status.Final()
		}
	}
	if staged {
		batch = newestStages(batch)
	}
	if len(batch) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	err := r.store.InsertExecutions(ctx, batch)
	r.metrics.StoreWrite(len(batch), time.Since(start), err)
	if err != nil {
		if !transient(err) {
			r.log.Error("write execution records", "records", len(batch), "error", err)
			r.drop(len(batch), "the store refused them")
		}
		return err
	}
	r.prune(ctx, batch)
	return nil
}

// prune keeps each function's history to the newest r.keep records,
// checking a function once a tenth of that many new records arrived.
func (r *recorder) prune(ctx context.Context, batch []*fn.Execution) {
	every := max(1, min(1000, r.keep/10))
	for _, ex := range batch {
		r.unpruned[ex.FunctionID]++
	}
	for id, n := range r.unpruned {
		if n < every {
			continue
		}
		delete(r.unpruned, id)
		if _, err := r.store.PruneExecutions(ctx, id, r.keep); err != nil {
			r.log.Error("prune execution records", "function", id, "error", err)
		}
	}
}

// flush writes everything recorded so far.
func (r *recorder) flush(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case r.flushes <- reply:
	case <-r.finished:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close writes what is left and stops.
func (r *recorder) close(ctx context.Context) error {
	close(r.done)
	select {
	case <-r.finished:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// newestStages keeps, of the records in batch that share an id (an
// async call's queued, running and final records), only the one the
// store would keep: the greatest (attempt, stage). A call that ends
// within one flush is then written once, not three times.
func newestStages(batch []*fn.Execution) []*fn.Execution {
	at := make(map[string]int, len(batch)) // id → index in out
	out := batch[:0:0]
	for _, ex := range batch {
		i, seen := at[ex.ID]
		switch {
		case !seen:
			at[ex.ID] = len(out)
			out = append(out, ex)
		case later(ex, out[i]):
			out[i] = ex
		}
	}
	return out
}

// later reports whether a is a later record of a call than b.
func later(a, b *fn.Execution) bool {
	if a.Attempt != b.Attempt {
		return a.Attempt > b.Attempt
	}
	return stage(a.Status) > stage(b.Status)
}

func stage(s fn.Status) int {
	switch s {
	case fn.StatusQueued:
		return 0
	case fn.StatusRunning:
		return 1
	}
	return 2
}
