package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// Functions lists the functions whose schedules run (the functions
// service).
type Functions interface {
	List(ctx context.Context) ([]*fn.Function, error)
}

// Enqueue queues an async call of f (the async queue). The queue drops a
// second call with the same dedupKey within its dedup window.
// The qualifier (a version, an alias, or "" for the draft) says what runs.
type Enqueue func(ctx context.Context, f *fn.Function, trigger, qualifier string, event json.RawMessage, dedupKey string) (executionID string, err error)

// KeyValues opens a JetStream key-value bucket (the bus).
type KeyValues interface {
	KeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error)
}

const (
	// Bucket holds, per schedule (key "<functionID>.<scheduleName>"), the
	// Unix seconds of the last tick fired, in decimal.
	Bucket = "nimbus_schedules"
	// DefaultPollInterval is how often the functions are listed.
	DefaultPollInterval = 2 * time.Second
	// LateLimit is how late a server that runs may fire a tick: past it
	// (the process was stopped, the machine slept) the tick counts as
	// missed and the schedule's CatchUp decides.
	LateLimit = time.Minute
	// fireTimeout bounds the claim and enqueue of one tick.
	fireTimeout = 30 * time.Second
	// enqueueAttempts is how many times a claimed tick is offered to the
	// queue; the dedup key makes a retry safe.
	enqueueAttempts = 3
	// claimAttempts bounds the compare-and-set retries of one claim.
	claimAttempts = 5
)

// Config is what a Scheduler needs.
type Config struct {
	Bus       KeyValues
	Functions Functions
	Enqueue   Enqueue
	// PollInterval is how often Functions are listed (DefaultPollInterval).
	PollInterval time.Duration
	Logger       *slog.Logger
}

// Scheduler fires the enabled schedules of every function on time, once
// per tick across the servers that share its bus.
type Scheduler struct {
	cfg Config
	log *slog.Logger
	kv  jetstream.KeyValue

	// entries and polled belong to the run goroutine.
	entries map[string]*entry
	polled  bool // a List has succeeded since Start

	cancel     context.CancelFunc
	cancelWork context.CancelFunc // ends claims and enqueues under way
	done       chan struct{}      // closed when run returns
	work       sync.WaitGroup     // claims and enqueues under way
}

// entry is one enabled schedule as the run goroutine sees it.
type entry struct {
	key    string // in the bucket
	f      *fn.Function
	s      fn.Schedule
	timing string    // cron, rate and zone: a change restarts the timetable
	next   time.Time // the next tick; zero: none
}

// New checks cfg and returns a Scheduler to Start.
func New(cfg Config) (*Scheduler, error) {
	if cfg.Bus == nil || cfg.Functions == nil || cfg.Enqueue == nil {
		return nil, errors.New("schedule: Bus, Functions and Enqueue are required")
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{cfg: cfg, log: log.With("component", "schedule"), entries: map[string]*entry{}}, nil
}

// Start opens the bucket and runs the scheduler until ctx ends or Close.
func (s *Scheduler) Start(ctx context.Context) error {
	kv, err := s.cfg.Bus.KeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "the last tick fired of each function schedule",
		History:     1,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return fmt.Errorf("schedule: %w", err)
	}
	s.kv = kv
	runCtx, cancel := context.WithCancel(ctx)
	// A tick claimed is enqueued even while the server stops; Close
	// waits for it, and cuts it short only when its own ctx ends.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel, s.cancelWork, s.done = cancel, cancelWork, make(chan struct{})
	go s.run(runCtx, workCtx)
	return nil
}

// Close stops the scheduler and waits, until ctx ends, for the ticks it
// is firing.
func (s *Scheduler) Close(ctx context.Context) error {
	if s.cancel == nil {
		return nil
	}
	s.cancel()
	<-s.done // run returns at once: it waits on nothing but its select
	finished := make(chan struct{})
	go func() { s.work.Wait(); close(finished) }()
	select {
	case <-finished:
		s.cancelWork()
		return nil
	case <-ctx.Done():
		s.cancelWork()
		<-finished
		return fmt.Errorf("schedule: close: %w", ctx.Err())
	}
}

// NextRuns is when each enabled schedule of f fires next, by name.
func (s *Scheduler) NextRuns(f *fn.Function) map[string]time.Time {
	now := time.Now()
	runs := map[string]time.Time{}
	for i := range f.Schedules {
		sc := &f.Schedules[i]
		if !sc.On() {
			continue
		}
		if t, err := sc.Next(now); err == nil {
			runs[sc.Name] = t
		}
	}
	return runs
}

// run is the scheduler's one loop: it lists the functions every poll and
// sleeps until the earliest next tick.
func (s *Scheduler) run(ctx, workCtx context.Context) {
	defer close(s.done)
	poll := time.NewTicker(s.cfg.PollInterval)
	defer poll.Stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	s.refresh(ctx, workCtx)
	for {
		s.arm(timer)
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
			s.refresh(ctx, workCtx)
		case <-timer.C:
			s.fireDue(workCtx)
		}
	}
}

// arm sets timer to the earliest next tick, or stops it.
func (s *Scheduler) arm(timer *time.Timer) {
	var first time.Time
	for _, e := range s.entries {
		if !e.next.IsZero() && (first.IsZero() || e.next.Before(first)) {
			first = e.next
		}
	}
	if first.IsZero() {
		timer.Stop()
		return
	}
	timer.Reset(time.Until(first))
}

// refresh lists the functions and brings the entries up to date: new
// schedules start (and, on the first list after Start, catch up), those
// removed or disabled stop, and a changed timetable restarts from now.
func (s *Scheduler) refresh(ctx, workCtx context.Context) {
	fns, err := s.cfg.Functions.List(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("list functions", "error", err)
		}
		return
	}
	now := time.Now()
	startup := !s.polled
	s.polled = true
	seen := make(map[string]bool, len(s.entries))
	for _, f := range fns {
		for _, sc := range f.Schedules {
			if !sc.On() {
				continue
			}
			key := f.ID + "." + sc.Name
			seen[key] = true
			timing := sc.Cron + "|" + sc.Rate + "|" + sc.Timezone
			old := s.entries[key]
			if old != nil && old.timing == timing {
				old.f, old.s = f, sc
				continue
			}
			e := &entry{key: key, f: f, s: sc, timing: timing}
			if e.next, err = sc.Next(now); err != nil {
				s.log.Warn("schedule never fires", "function", f.Name, "schedule", sc.Name, "error", err)
			}
			s.entries[key] = e
			if old == nil {
				s.work.Go(func() { s.arrive(workCtx, f, sc, key, now, startup) })
			}
		}
	}
	for key := range s.entries {
		if !seen[key] {
			delete(s.entries, key)
		}
	}
}

// arrive settles a schedule this server has not run before. One no server
// has run (no key) starts with the ticks before now settled, so it never
// catches up. One found on the first list after Start, with CatchUp
// latest, fires the latest tick missed since the one last fired, once.
func (s *Scheduler) arrive(ctx context.Context, f *fn.Function, sc fn.Schedule, key string, now time.Time, startup bool) {
	ctx, cancel := context.WithTimeout(ctx, fireTimeout)
	defer cancel()
	last, _, err := s.last(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		base := now
		if t, ok := latestTick(&sc, time.Time{}, now); ok {
			base = t
		}
		_, err = s.kv.Create(ctx, key, encode(base))
		if err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			s.log.Warn("record a new schedule", "function", f.Name, "schedule", sc.Name, "error", err)
		}
		return
	}
	if err != nil {
		s.log.Warn("read a schedule's last tick", "function", f.Name, "schedule", sc.Name, "error", err)
		return
	}
	if !startup || sc.CatchUp != fn.CatchUpLatest {
		return
	}
	if t, ok := latestTick(&sc, last, now); ok {
		s.log.Info("catch up a missed tick", "function", f.Name, "schedule", sc.Name, "tick", t, "lastFired", last)
		s.fire(ctx, f, sc, key, t)
	}
}

// fireDue fires every entry whose tick has come. After a stall only the
// latest tick due fires; one later than LateLimit fires only with
// CatchUp latest.
func (s *Scheduler) fireDue(ctx context.Context) {
	now := time.Now()
	for _, e := range s.entries {
		if e.next.IsZero() || e.next.After(now) {
			continue
		}
		// The latest tick in [e.next, now].
		tick, ok := latestTick(&e.s, e.next.Add(-time.Nanosecond), now)
		if !ok {
			tick = e.next
		}
		if tick != e.next {
			s.log.Warn("ticks skipped: the scheduler was late", "function", e.f.Name, "schedule", e.s.Name, "from", e.next, "to", tick)
		}
		if late := now.Sub(tick); late <= LateLimit || e.s.CatchUp == fn.CatchUpLatest {
			f, sc, key := e.f, e.s, e.key
			s.work.Go(func() {
				ctx, cancel := context.WithTimeout(ctx, fireTimeout)
				defer cancel()
				s.fire(ctx, f, sc, key, tick)
			})
		} else {
			s.log.Warn("tick missed", "function", e.f.Name, "schedule", e.s.Name, "tick", tick, "late", late)
		}
		var err error
		if e.next, err = e.s.Next(now); err != nil {
			s.log.Warn("schedule never fires again", "function", e.f.Name, "schedule", e.s.Name, "error", err)
		}
	}
}

// fire queues the call of tick if this server wins its claim.
//
// The claim (the compare-and-set of the last tick fired) comes before the
// enqueue, so that one server queues each tick. A crash between the two
// loses the tick: at most once. The other order would have every server
// queue every tick, with only the queue's 10-minute dedup window keeping
// the calls single; a server late by more than that would run it twice.
func (s *Scheduler) fire(ctx context.Context, f *fn.Function, sc fn.Schedule, key string, tick time.Time) {
	log := s.log.With("function", f.Name, "schedule", sc.Name, "tick", tick.UTC().Format(time.RFC3339))
	won, err := s.claim(ctx, key, tick)
	if err != nil {
		log.Error("claim a tick", "error", err)
		return
	}
	if !won {
		log.Debug("tick fired by another server")
		return
	}
	dedup := fmt.Sprintf("schedule/%s/%s/%d", f.ID, sc.Name, tick.Unix())
	event := scheduledEvent(f, &sc, tick, dedup)
	for attempt := 1; ; attempt++ {
		id, err := s.cfg.Enqueue(ctx, f, fn.TriggerSchedule, sc.Qualifier, event, dedup)
		if err == nil {
			log.Debug("schedule fired", "execution", id)
			return
		}
		if attempt == enqueueAttempts || ctx.Err() != nil {
			log.Error("tick lost: enqueue failed", "attempts", attempt, "error", err)
			return
		}
		log.Warn("enqueue failed, retrying", "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(attempt) * 500 * time.Millisecond):
		}
	}
}

// claim moves the schedule's last tick fired to tick, if it is earlier,
// by compare-and-set: true if this call moved it. A conflict means the
// value changed under it (another server fired this tick, or a new
// schedule was recorded): it reads the value again and decides anew.
func (s *Scheduler) claim(ctx context.Context, key string, tick time.Time) (bool, error) {
	for range claimAttempts {
		last, rev, err := s.last(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			_, err = s.kv.Create(ctx, key, encode(tick))
		case err != nil:
			return false, err
		case !last.Before(tick):
			return false, nil
		default:
			_, err = s.kv.Update(ctx, key, encode(tick), rev)
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		return err == nil, err
	}
	return false, fmt.Errorf("claim %s: the value kept changing", key)
}

// last reads the schedule's last tick fired and its revision. A value
// that is not a number reads as the epoch, to be overwritten.
func (s *Scheduler) last(ctx context.Context, key string) (time.Time, uint64, error) {
	e, err := s.kv.Get(ctx, key)
	if err != nil {
		return time.Time{}, 0, err
	}
	sec, err := strconv.ParseInt(string(e.Value()), 10, 64)
	if err != nil {
		s.log.Warn("bad last tick, overwritten", "key", key, "value", string(e.Value()))
		sec = 0
	}
	return time.Unix(sec, 0), e.Revision(), nil
}

func encode(t time.Time) []byte { return strconv.AppendInt(nil, t.Unix(), 10) }

// latestTick is the schedule's latest tick in (after, now]. It looks back
// in growing windows so that a long gap does not walk every tick of it.
func latestTick(sc *fn.Schedule, after, now time.Time) (time.Time, bool) {
	for _, back := range []time.Duration{time.Minute, time.Hour, 24 * time.Hour, 32 * 24 * time.Hour, 366 * 24 * time.Hour, 5 * 366 * 24 * time.Hour} {
		from, last := now.Add(-back), false
		if !from.After(after) {
			from, last = after, true
		}
		t, err := sc.Next(from)
		if err != nil || t.After(now) {
			if last {
				return time.Time{}, false
			}
			continue
		}
		for {
			n, err := sc.Next(t)
			if err != nil || n.After(now) {
				return t, true
			}
			t = n
		}
	}
	return time.Time{}, false
}
