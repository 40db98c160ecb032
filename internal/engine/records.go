package engine

import (
	"context"
	"log/slog"
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
// goroutine, off the invoke path. Records wait in a bounded buffer; when the
// store falls so far behind that it fills, new records are dropped and
// counted rather than slowing calls down.
type recorder struct {
	store    RecordStore
	metrics  *metrics.Recorder
	log      *slog.Logger
	interval time.Duration
	batch    int
	keep     int
	in       chan *fn.Execution
	flushes  chan chan error
	done     chan struct{}
	finished chan struct{}
	dropped  atomic.Int64
	deleted  sync.Map // function id → struct{}: skip their records
	unpruned map[string]int
}

func newRecorder(cfg Config, log *slog.Logger) *recorder {
	r := &recorder{
		store:    cfg.Records,
		metrics:  cfg.Metrics,
		log:      log,
		interval: cfg.FlushInterval,
		batch:    cfg.BatchSize,
		keep:     cfg.Retention,
		flushes:  make(chan chan error),
		done:     make(chan struct{}),
		finished: make(chan struct{}),
		unpruned: make(map[string]int),
	}
	if r.batch == 0 {
		r.batch = 512
	}
	buf := cfg.RecordBuffer
	if buf == 0 {
		buf = 1 << 16
	}
	r.in = make(chan *fn.Execution, buf)
	return r
}

func (r *recorder) add(ex *fn.Execution) {
	select {
	case r.in <- ex:
	default:
		if n := r.dropped.Add(1); n&(n-1) == 0 { // log at powers of two
			r.log.Warn("execution records dropped: the store is not keeping up", "dropped", n)
		}
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
	pending := make([]*fn.Execution, 0, r.batch)
	for {
		select {
		case ex := <-r.in:
			pending = append(pending, ex)
			if len(pending) >= r.batch {
				pending = r.write(pending)
			}
		case <-tick:
			pending = r.write(pending)
		case reply := <-r.flushes:
			pending = r.drain(pending)
			reply <- r.writeErr(pending)
			pending = pending[:0]
		case <-r.done:
			r.writeErr(r.drain(pending))
			return
		}
	}
}

// drain moves every buffered record into pending, writing full batches.
func (r *recorder) drain(pending []*fn.Execution) []*fn.Execution {
	for {
		select {
		case ex := <-r.in:
			pending = append(pending, ex)
			if len(pending) >= r.batch {
				pending = r.write(pending)
			}
		default:
			return pending
		}
	}
}

func (r *recorder) write(pending []*fn.Execution) []*fn.Execution {
	_ = r.writeErr(pending)
	return pending[:0]
}

func (r *recorder) writeErr(pending []*fn.Execution) error {
	if len(pending) == 0 {
		return nil
	}
	batch := pending[:0:0]
	for _, ex := range pending {
		if _, gone := r.deleted.Load(ex.FunctionID); !gone {
			batch = append(batch, ex)
		}
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
		r.dropped.Add(int64(len(batch)))
		r.log.Error("write execution records", "records", len(batch), "error", err)
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
