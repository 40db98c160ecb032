package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// Minute is one minute of aggregates of a function, or of the whole system
// when FunctionID is "", as it is saved.
type Minute struct {
	FunctionID string
	Start      time.Time
	Data       []byte // what encodeMinute wrote
}

// MinuteStore keeps minutes across restarts (store.MetricsStore, adapted).
type MinuteStore interface {
	SaveMinutes(ctx context.Context, minutes []Minute) error
	LoadMinutes(ctx context.Context, since time.Time) ([]Minute, error)
	PruneMinutes(ctx context.Context, cutoff time.Time) (int64, error)
	DeleteMinutes(ctx context.Context, functionID string) error
}

// pruneEvery is how often saved minutes past the retention are deleted.
const pruneEvery = time.Hour

// Start loads the minutes saved over the last 24 hours, so that windows
// reaching back before this process started still count them, prunes
// minutes past the retention and begins saving every SaveInterval. Without
// a store it does nothing.
func (r *Recorder) Start(ctx context.Context) error {
	if r.cfg.Store == nil {
		return nil
	}
	if err := r.load(ctx); err != nil {
		return err
	}
	r.prune(ctx)
	if r.cfg.SaveInterval > 0 {
		r.running.Store(true)
		go r.run()
	}
	return nil
}

func (r *Recorder) run() {
	defer close(r.stopped)
	t := time.NewTicker(r.cfg.SaveInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if err := r.Save(ctx); err != nil {
				r.log.Error("save metric minutes", "error", err)
			}
			cancel()
		case <-r.stop:
			return
		}
	}
}

// Close stops saving in the background and saves what changed. A second
// call does nothing.
func (r *Recorder) Close(ctx context.Context) error {
	if r.cfg.Store == nil || !r.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(r.stop)
	if r.running.Load() {
		select {
		case <-r.stopped:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return r.Save(ctx)
}

// Save writes every minute that changed since the last save, the current
// one included (it is written again as it fills), and deletes the saved
// minutes of functions forgotten since.
func (r *Recorder) Save(ctx context.Context) error {
	if r.cfg.Store == nil {
		return nil
	}
	r.saveMu.Lock()
	defer r.saveMu.Unlock()

	type taken struct {
		s    *series
		from int64
	}
	var (
		batch []Minute
		undo  []taken
		errs  []error
	)
	collect := func(id string, s *series) {
		from, buckets := s.takeDirty()
		if buckets == nil {
			return
		}
		undo = append(undo, taken{s, from})
		for _, b := range buckets {
			data, err := encodeMinute(b)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			batch = append(batch, Minute{FunctionID: id, Start: time.Unix(0, b.slot*int64(time.Minute)).UTC(), Data: data})
		}
	}
	collect("", r.all)
	r.fns.Range(func(k, v any) bool {
		collect(k.(string), v.(*function).series)
		return true
	})
	// Taken after the minutes: a function forgotten meanwhile has its
	// minutes deleted after they are written, now or at the next save.
	r.mu.Lock()
	deleted := r.deleted
	r.deleted = nil
	r.mu.Unlock()

	if err := r.cfg.Store.SaveMinutes(ctx, batch); err != nil {
		for _, t := range undo {
			t.s.markDirty(t.from)
		}
		r.requeue(deleted)
		return fmt.Errorf("metrics: save %d minutes: %w", len(batch), err)
	}
	for i, id := range deleted {
		if err := r.cfg.Store.DeleteMinutes(ctx, id); err != nil {
			r.requeue(deleted[i:])
			errs = append(errs, fmt.Errorf("metrics: delete minutes of %s: %w", id, err))
			break
		}
	}
	if r.now().Sub(r.lastPrune) >= pruneEvery {
		r.prune(ctx)
	}
	return errors.Join(errs...)
}

func (r *Recorder) requeue(ids []string) {
	if len(ids) == 0 {
		return
	}
	r.mu.Lock()
	r.deleted = append(r.deleted, ids...)
	r.mu.Unlock()
}

// prune deletes saved minutes older than the retention.
func (r *Recorder) prune(ctx context.Context) {
	now := r.now()
	r.lastPrune = now
	if n, err := r.cfg.Store.PruneMinutes(ctx, now.Add(-r.cfg.Retention)); err != nil {
		r.log.Error("prune metric minutes", "error", err)
	} else if n > 0 {
		r.log.Debug("pruned metric minutes", "minutes", n)
	}
}

// load merges the minutes saved over the last MaxWindow into the
// per-minute buckets.
func (r *Recorder) load(ctx context.Context) error {
	minutes, err := r.cfg.Store.LoadMinutes(ctx, r.now().Add(-MaxWindow))
	if err != nil {
		return fmt.Errorf("metrics: load minutes: %w", err)
	}
	bad := 0
	for _, m := range minutes {
		b, err := decodeMinute(m.Data)
		if err != nil {
			if bad++; bad == 1 {
				r.log.Warn("skipping saved metric minutes that do not decode", "function", m.FunctionID, "start", m.Start, "error", err)
			}
			continue
		}
		s := r.all
		if m.FunctionID != "" {
			f := r.function(m.FunctionID, true)
			if f == nil {
				continue
			}
			s = f.series
		}
		s.restore(m.Start, b)
	}
	r.log.Debug("loaded metric minutes", "minutes", len(minutes), "skipped", bad)
	return nil
}

// takeDirty returns copies of the per-minute buckets changed since the
// last call and the oldest slot among them, and marks the series clean.
func (s *series) takeDirty() (int64, []*bucket) {
	s.mu.Lock()
	defer s.mu.Unlock()
	from := s.dirty
	if from == math.MaxInt64 || s.min.buckets == nil {
		return 0, nil
	}
	s.dirty = math.MaxInt64
	var out []*bucket
	for _, b := range s.min.buckets {
		if b != nil && b.slot >= from {
			c := &bucket{slot: b.slot}
			c.merge(b)
			out = append(out, c)
		}
	}
	return from, out
}

// markDirty marks minutes from slot on as changed again (a save failed).
func (s *series) markDirty(slot int64) {
	s.mu.Lock()
	s.dirty = min(s.dirty, slot)
	s.mu.Unlock()
}

// restore adds a saved minute to the per-minute buckets.
func (s *series) restore(start time.Time, b *bucket) {
	slot := s.min.slotOf(start)
	s.mu.Lock()
	s.min.at(slot, true).merge(b)
	s.restored = max(s.restored, (slot+1)*int64(time.Minute))
	s.mu.Unlock()
}

// minuteJSON is a minute's bucket as it is saved. Statuses go by name, so
// the encoding does not depend on their order.
type minuteJSON struct {
	Version  int               `json:"v"`
	ByStatus map[string]uint64 `json:"byStatus"`
	Cold     uint64            `json:"cold,omitempty"`
	Duration *Histogram        `json:"durationMs,omitempty"`
	Init     *Histogram        `json:"initMs,omitempty"`
	Memory   *memoryJSON       `json:"peakMemoryKiB,omitempty"`
	Errors   map[string]uint64 `json:"errors,omitempty"`
}

type memoryJSON struct {
	N   uint64 `json:"n"`
	Sum uint64 `json:"sum"`
	Max uint64 `json:"max"`
}

const minuteVersion = 1

func encodeMinute(b *bucket) ([]byte, error) {
	m := minuteJSON{Version: minuteVersion, ByStatus: make(map[string]uint64, numStatuses), Cold: b.cold, Errors: b.errors}
	for i, c := range b.byStatus {
		if c > 0 {
			m.ByStatus[string(fn.Statuses[i])] = c
		}
	}
	if b.dur.Count() > 0 {
		m.Duration = &b.dur
	}
	if b.init.Count() > 0 {
		m.Init = &b.init
	}
	if b.mem.n > 0 {
		m.Memory = &memoryJSON{N: b.mem.n, Sum: b.mem.sumKiB, Max: b.mem.maxKiB}
	}
	return json.Marshal(&m)
}

func decodeMinute(data []byte) (*bucket, error) {
	var m minuteJSON
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("decode metric minute: %w", err)
	}
	if m.Version != minuteVersion {
		return nil, fmt.Errorf("decode metric minute: version %d, want %d", m.Version, minuteVersion)
	}
	b := &bucket{cold: m.Cold}
	for st, c := range m.ByStatus {
		b.byStatus[statusIndex(fn.Status(st))] += c
	}
	if m.Duration != nil {
		b.dur = *m.Duration
	}
	if m.Init != nil {
		b.init = *m.Init
	}
	if m.Memory != nil {
		b.mem = memory{n: m.Memory.N, sumKiB: m.Memory.Sum, maxKiB: m.Memory.Max}
	}
	for typ, n := range m.Errors {
		b.addErrors(typ, n)
	}
	return b, nil
}
