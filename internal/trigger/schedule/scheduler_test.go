package schedule_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/nimbusfaas/nimbus/internal/bus"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/trigger/schedule"
)

// Tolerances. The machine may be loaded: a tick may be enqueued up to
// maxLag after it, and waits for calls are long; nothing asserts a tight
// time.
const (
	maxLag = 1500 * time.Millisecond
	wait   = 20 * time.Second
	poll   = 100 * time.Millisecond
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openBus(t *testing.T) *bus.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := bus.Open(ctx, bus.Config{DataDir: t.TempDir(), Logger: quiet()})
	if err != nil {
		t.Fatalf("bus.Open: %v", err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	return b
}

// functions is a Functions whose list a test changes.
type functions struct {
	mu  sync.Mutex
	fns []*fn.Function
}

func (f *functions) List(context.Context) ([]*fn.Function, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.fns), nil
}

func (f *functions) set(fns ...*fn.Function) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fns = fns
}

func function(id string, schedules ...fn.Schedule) *fn.Function {
	return &fn.Function{ID: id, Name: "fn-" + id, Schedules: schedules}
}

// call is one enqueue.
type call struct {
	by       string // which scheduler
	function string
	dedupKey string
	tick     time.Time
	at       time.Time
	event    schedule.Event
}

// recorder is the queue: it records every enqueue and drops none, so
// that a tick fired twice shows.
type recorder struct {
	t     *testing.T
	mu    sync.Mutex
	calls []call
}

var dedupRE = regexp.MustCompile(`^schedule/([^/]+)/([^/]+)/([0-9]+)$`)

func (r *recorder) enqueue(by string) schedule.Enqueue {
	return func(_ context.Context, f *fn.Function, trigger, _ string, event json.RawMessage, dedupKey string) (string, error) {
		at := time.Now()
		c := call{by: by, function: f.ID, dedupKey: dedupKey, at: at}
		if trigger != fn.TriggerSchedule {
			r.t.Errorf("trigger %q", trigger)
		}
		m := dedupRE.FindStringSubmatch(dedupKey)
		if m == nil || m[1] != f.ID {
			r.t.Errorf("dedup key %q of function %s", dedupKey, f.ID)
		} else {
			sec, _ := strconv.ParseInt(m[3], 10, 64)
			c.tick = time.Unix(sec, 0)
		}
		if err := json.Unmarshal(event, &c.event); err != nil {
			r.t.Errorf("event %s: %v", event, err)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.calls = append(r.calls, c)
		return fmt.Sprintf("exec-%d", len(r.calls)), nil
	}
}

// of is the calls of schedule name (all calls if "").
func (r *recorder) of(name string) []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []call
	for _, c := range r.calls {
		if name == "" || strings.HasSuffix(path(c), "/"+name) {
			out = append(out, c)
		}
	}
	return out
}

func path(c call) string {
	m := dedupRE.FindStringSubmatch(c.dedupKey)
	if m == nil {
		return ""
	}
	return m[1] + "/" + m[2]
}

// waitFor waits until schedule name has at least n calls.
func (r *recorder) waitFor(t *testing.T, name string, n int) []call {
	t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		if c := r.of(name); len(c) >= n {
			return c
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%d calls of %q within %s, want %d", len(r.of(name)), name, wait, n)
	return nil
}

// start starts a scheduler on b, closed at the end of the test.
func start(t *testing.T, b *bus.Bus, fns *functions, r *recorder, by string) *schedule.Scheduler {
	t.Helper()
	s, err := schedule.New(schedule.Config{Bus: b, Functions: fns, Enqueue: r.enqueue(by), PollInterval: poll, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeScheduler(t, s) })
	return s
}

func closeScheduler(t *testing.T, s *schedule.Scheduler) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// checkOnTime fails if a call came before its tick or more than maxLag
// after it, or if a tick was fired twice.
func checkOnTime(t *testing.T, calls []call) {
	t.Helper()
	seen := map[string]bool{}
	for _, c := range calls {
		if lag := c.at.Sub(c.tick); lag < 0 || lag > maxLag {
			t.Errorf("tick %s enqueued at %s: %s late", c.tick.Format(time.RFC3339), c.at.Format(time.RFC3339Nano), lag)
		}
		if seen[c.dedupKey] {
			t.Errorf("tick %s fired twice", c.dedupKey)
		}
		seen[c.dedupKey] = true
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestCronFiresOnTime(t *testing.T) {
	t.Parallel()
	b := openBus(t)
	fns, r := &functions{}, &recorder{t: t}
	fns.set(function("f1", fn.Schedule{Name: "every-second", Cron: "* * * * * *", Event: json.RawMessage(`{"k":1}`)}))
	start(t, b, fns, r, "a")
	calls := r.waitFor(t, "every-second", 3)
	checkOnTime(t, calls)
	ids := map[string]bool{}
	for _, c := range calls {
		e := c.event
		if e.Version != "0" || e.DetailType != "Scheduled Event" || e.Source != "nimbus.schedule" ||
			e.Time != c.tick.UTC().Format(time.RFC3339) || !slices.Equal(e.Resources, []string{"fn-f1/every-second"}) ||
			string(e.Detail) != `{"k":1}` || !uuidRE.MatchString(e.ID) || ids[e.ID] {
			t.Errorf("event %+v of tick %s", e, c.tick)
		}
		ids[e.ID] = true
	}
}

func TestTwoSchedulersFireEachTickOnce(t *testing.T) {
	t.Parallel()
	b := openBus(t)
	fns, r := &functions{}, &recorder{t: t}
	fns.set(function("f1", fn.Schedule{Name: "every-second", Cron: "* * * * * *"}))
	s1 := start(t, b, fns, r, "a")
	s2 := start(t, b, fns, r, "b")
	r.waitFor(t, "every-second", 5)
	closeScheduler(t, s1) // Close waits for the ticks being fired
	closeScheduler(t, s2)
	calls := r.of("")
	checkOnTime(t, calls)
	by := map[string]int{}
	for _, c := range calls {
		by[c.by]++
	}
	t.Logf("%d ticks, by scheduler %v", len(calls), by)
}

// lastFired writes the last tick fired of key as a server that ran
// before would have.
func lastFired(t *testing.T, b *bus.Bus, key string, tick time.Time) jetstream.KeyValue {
	t.Helper()
	kv, err := b.KeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: schedule.Bucket, History: 1, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(t.Context(), key, []byte(strconv.FormatInt(tick.Unix(), 10))); err != nil {
		t.Fatal(err)
	}
	return kv
}

func value(t *testing.T, kv jetstream.KeyValue, key string) time.Time {
	t.Helper()
	e, err := kv.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	sec, err := strconv.ParseInt(string(e.Value()), 10, 64)
	if err != nil {
		t.Fatalf("%s = %q", key, e.Value())
	}
	return time.Unix(sec, 0)
}

// TestCatchUp starts schedulers after a downtime: the hourly schedule
// last fired three hours ago. With catchUp none nothing missed fires;
// with latest the latest missed tick fires once, even with two servers.
// A schedule never run before fires nothing missed either way.
func TestCatchUp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		catchUp fn.CatchUp
		want    int
	}{{fn.CatchUpNone, 0}, {fn.CatchUpLatest, 1}} {
		t.Run(string(tc.catchUp), func(t *testing.T) {
			t.Parallel()
			b := openBus(t)
			latest := time.Now().Truncate(time.Hour) // the latest tick of 1h
			kv := lastFired(t, b, "f1.hourly", latest.Add(-3*time.Hour))
			fns, r := &functions{}, &recorder{t: t}
			fns.set(function("f1",
				fn.Schedule{Name: "hourly", Rate: "1h", CatchUp: tc.catchUp},
				fn.Schedule{Name: "fresh", Rate: "1h", CatchUp: fn.CatchUpLatest},
				fn.Schedule{Name: "beat", Cron: "* * * * * *"}))
			start(t, b, fns, r, "a")
			start(t, b, fns, r, "b")
			if tc.want > 0 {
				r.waitFor(t, "hourly", tc.want)
			}
			r.waitFor(t, "beat", 2) // both have long settled what they found
			time.Sleep(300 * time.Millisecond)
			if time.Now().Truncate(time.Hour) != latest {
				t.Skip("an hour began during the test")
			}
			hourly := r.of("hourly")
			if len(hourly) != tc.want {
				t.Fatalf("%d calls of hourly, want %d: %+v", len(hourly), tc.want, hourly)
			}
			wantLast := latest.Add(-3 * time.Hour)
			if tc.want > 0 {
				wantLast = latest
				if !hourly[0].tick.Equal(latest) {
					t.Errorf("caught up tick %s, want %s", hourly[0].tick, latest)
				}
			}
			if got := value(t, kv, "f1.hourly"); !got.Equal(wantLast) {
				t.Errorf("last fired %s, want %s", got, wantLast)
			}
			if n := len(r.of("fresh")); n != 0 {
				t.Errorf("a new schedule caught up %d ticks", n)
			}
			if got := value(t, kv, "f1.fresh"); !got.Equal(latest) {
				t.Errorf("new schedule recorded at %s, want %s", got, latest)
			}
			checkOnTime(t, r.of("beat"))
		})
	}
}

// TestStops checks that a schedule disabled, or a function removed,
// stops firing on the next poll.
func TestStops(t *testing.T) {
	t.Parallel()
	on := fn.Schedule{Name: "every-second", Cron: "* * * * * *"}
	off := on
	off.Enabled = new(bool)
	for _, tc := range []struct {
		name  string
		after []*fn.Function
	}{
		{"disabled", []*fn.Function{function("f1", off)}},
		{"removed", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := openBus(t)
			fns, r := &functions{}, &recorder{t: t}
			fns.set(function("f1", on))
			start(t, b, fns, r, "a")
			r.waitFor(t, "", 1)
			fns.set(tc.after...)
			// A few polls, and a tick being fired may still land.
			time.Sleep(5*poll + 500*time.Millisecond)
			n := len(r.of(""))
			time.Sleep(2500 * time.Millisecond)
			if m := len(r.of("")); m != n {
				t.Fatalf("%d calls after the schedule stopped", m-n)
			}
		})
	}
}

func TestChangeTakesEffect(t *testing.T) {
	t.Parallel()
	b := openBus(t)
	fns, r := &functions{}, &recorder{t: t}
	fns.set(function("f1", fn.Schedule{Name: "s", Rate: "744h"}))
	start(t, b, fns, r, "a")
	time.Sleep(3 * poll)
	changed := time.Now()
	fns.set(function("f1", fn.Schedule{Name: "s", Cron: "* * * * * *"}))
	calls := r.waitFor(t, "s", 2)
	checkOnTime(t, calls)
	if calls[0].tick.Before(changed.Truncate(time.Second)) {
		t.Fatalf("tick %s fired, before the change at %s", calls[0].tick, changed)
	}
}

func TestRate(t *testing.T) {
	t.Parallel()
	b := openBus(t)
	fns, r := &functions{}, &recorder{t: t}
	fns.set(function("f1", fn.Schedule{Name: "two", Rate: "2s"}))
	start(t, b, fns, r, "a")
	calls := r.waitFor(t, "two", 2)
	checkOnTime(t, calls)
	for _, c := range calls {
		if c.tick.Unix()%2 != 0 {
			t.Errorf("tick %d is not a multiple of 2 s", c.tick.Unix())
		}
	}
}

func TestCloseLeavesNoGoroutine(t *testing.T) {
	b := openBus(t)
	fns, r := &functions{}, &recorder{t: t}
	fns.set(function("f1", fn.Schedule{Name: "every-second", Cron: "* * * * * *"}))
	s, err := schedule.New(schedule.Config{Bus: b, Functions: fns, Enqueue: r.enqueue("a"), PollInterval: poll, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, "", 1)
	closeScheduler(t, s)
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	if strings.Contains(stacks, "internal/trigger/schedule.(*Scheduler)") {
		t.Fatalf("a goroutine of the scheduler is left after Close:\n%s", stacks)
	}
	n := len(r.of(""))
	time.Sleep(1500 * time.Millisecond)
	if m := len(r.of("")); m != n {
		t.Fatalf("%d calls after Close", m-n)
	}
}

func TestNextRuns(t *testing.T) {
	s, err := schedule.New(schedule.Config{Bus: &bus.Bus{}, Functions: &functions{}, Enqueue: (&recorder{t: t}).enqueue("a")})
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	runs := s.NextRuns(function("f1",
		fn.Schedule{Name: "hourly", Cron: "@hourly"},
		fn.Schedule{Name: "off", Cron: "@hourly", Enabled: new(bool)},
		fn.Schedule{Name: "rate", Rate: "10m"}))
	if len(runs) != 2 {
		t.Fatalf("runs %v", runs)
	}
	if h := runs["hourly"]; !h.After(before) || h.Minute() != 0 || h.Second() != 0 || h.Sub(before) > time.Hour {
		t.Errorf("hourly next at %s", h)
	}
	if r := runs["rate"]; !r.After(before) || r.Unix()%600 != 0 || r.Sub(before) > 10*time.Minute {
		t.Errorf("rate next at %s", r)
	}
}
