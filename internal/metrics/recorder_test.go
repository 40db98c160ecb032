package metrics_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/metrics"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// memStore is a MinuteStore in memory.
type memStore struct {
	mu      sync.Mutex
	minutes map[string]map[int64][]byte // function id → start (ns) → data
	saves   []int                       // minutes per SaveMinutes call
	pruned  time.Time                   // the last cutoff
	fail    error                       // returned by SaveMinutes when set
}

func newMemStore() *memStore { return &memStore{minutes: map[string]map[int64][]byte{}} }

func (m *memStore) SaveMinutes(_ context.Context, ms []metrics.Minute) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.saves = append(m.saves, len(ms))
	for _, x := range ms {
		if m.minutes[x.FunctionID] == nil {
			m.minutes[x.FunctionID] = map[int64][]byte{}
		}
		m.minutes[x.FunctionID][x.Start.UnixNano()] = x.Data
	}
	return nil
}

func (m *memStore) LoadMinutes(_ context.Context, since time.Time) ([]metrics.Minute, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []metrics.Minute
	for id, byStart := range m.minutes {
		for start, data := range byStart {
			if start >= since.UnixNano() {
				out = append(out, metrics.Minute{FunctionID: id, Start: time.Unix(0, start), Data: data})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out, nil
}

func (m *memStore) PruneMinutes(_ context.Context, cutoff time.Time) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pruned = cutoff
	var n int64
	for _, byStart := range m.minutes {
		for start := range byStart {
			if start < cutoff.UnixNano() {
				delete(byStart, start)
				n++
			}
		}
	}
	return n, nil
}

func (m *memStore) DeleteMinutes(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.minutes, id)
	return nil
}

func (m *memStore) count(id string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.minutes[id])
}

var t0 = time.Date(2030, 1, 2, 3, 4, 0, 0, time.UTC) // on a minute

func exec(f *fn.Function, end time.Time, st fn.Status, ms float64) *fn.Execution {
	return &fn.Execution{
		ID: fn.NewID(), FunctionID: f.ID, Status: st, DurationMs: ms,
		StartedAt: end.Add(-time.Duration(ms * float64(time.Millisecond))),
	}
}

func TestSummaryFigures(t *testing.T) {
	c := &clock{t: t0.Add(30 * time.Second)}
	r := metrics.New(metrics.Config{Now: c.now})
	f := &fn.Function{ID: "f1", Name: "one"}
	add := func(e *fn.Execution) { r.Record(f, e) }

	cold := exec(f, t0.Add(10*time.Second), fn.StatusSuccess, 120)
	cold.ColdStart, cold.InitMs, cold.PeakMemoryKiB = true, 100, 30_000
	add(cold)
	for i, typ := range []string{"ValueError", "KeyError", "ValueError", "Runtime.Timeout", "ValueError", "KeyError"} {
		e := exec(f, t0.Add(time.Duration(11+i)*time.Second), fn.StatusError, 5)
		e.Error, e.PeakMemoryKiB = &fn.ErrorInfo{Type: typ}, 40_000
		add(e)
	}
	rej := exec(f, t0.Add(20*time.Second), fn.StatusRejected, 0.1)
	rej.Error = &fn.ErrorInfo{Type: "Nimbus.Rejected"}
	add(rej)
	warm := exec(f, t0.Add(21*time.Second), fn.StatusSuccess, 2)
	warm.PeakMemoryKiB = 32_000
	add(warm)

	s := r.Function("f1", time.Minute)
	if s.Invocations != 9 || s.ByStatus["error"] != 6 || s.ByStatus["rejected"] != 1 || s.ColdStarts != 1 {
		t.Fatalf("counts %+v", s)
	}
	if want := 7.0 / 9; s.ErrorRate != want {
		t.Errorf("error rate %v, want %v", s.ErrorRate, want)
	}
	if want := 1.0 / 8; s.ColdStartRate != want { // rejected calls never start an instance
		t.Errorf("cold-start rate %v, want %v", s.ColdStartRate, want)
	}
	if s.InitDurationMs.Max != 100 || math.Abs(s.InitDurationMs.P50-100) > 1 {
		t.Errorf("init duration %+v, want 100 ms", s.InitDurationMs)
	}
	if s.DurationMs.Max != 120 || math.Abs(s.DurationMs.P50-5) > 0.05 {
		t.Errorf("duration %+v: rejected calls must not count", s.DurationMs)
	}
	if m := s.PeakMemoryKiB; m.Peak != 40_000 || m.Samples != 8 || m.Average != (30_000+6*40_000+32_000)/8.0 {
		t.Errorf("memory %+v", m)
	}
	want := []metrics.ErrorCount{{"ValueError", 3}, {"KeyError", 2}, {"Nimbus.Rejected", 1}, {"Runtime.Timeout", 1}}
	if len(s.Errors) != len(want) {
		t.Fatalf("top errors %+v, want %+v", s.Errors, want)
	}
	for i := range want {
		if s.Errors[i] != want[i] {
			t.Errorf("top error %d = %+v, want %+v", i, s.Errors[i], want[i])
		}
	}
	if sys := r.System(time.Minute); sys.Invocations != 9 || sys.Errors[0] != want[0] {
		t.Errorf("system %+v", sys)
	}
	if other := r.Function("nope", time.Minute); other.Invocations != 0 || other.ByStatus["success"] != 0 {
		t.Errorf("unknown function %+v", other)
	}
}

func TestErrorTypesAreBounded(t *testing.T) {
	c := &clock{t: t0}
	r := metrics.New(metrics.Config{Now: c.now})
	f := &fn.Function{ID: "f1", Name: "one"}
	for i := range 100 {
		e := exec(f, t0, fn.StatusError, 1)
		e.Error = &fn.ErrorInfo{Type: "E" + string(rune('A'+i%50))}
		r.Record(f, e)
	}
	s := r.Function("f1", time.Minute)
	if len(s.Errors) != 5 || s.Errors[0].Type != "(other)" {
		t.Fatalf("errors %+v: want the types past the bound counted as (other), first", s.Errors)
	}
}

func TestRates(t *testing.T) {
	c := &clock{t: t0.Add(20 * time.Minute)}
	r := metrics.New(metrics.Config{Now: c.now})
	f := &fn.Function{ID: "f1", Name: "one"}
	now := c.now()
	for i := range 60 { // one a second over the last minute
		r.Record(f, exec(f, now.Add(-time.Duration(i)*time.Second), fn.StatusSuccess, 1))
	}
	for i := range 240 { // and 240 more from one to five minutes ago
		r.Record(f, exec(f, now.Add(-time.Minute-time.Duration(i)*time.Second), fn.StatusSuccess, 1))
	}
	r.Record(f, exec(f, now.Add(-10*time.Minute), fn.StatusSuccess, 1))
	got := r.Rates("f1")
	if got.M1 != 1 || got.M5 != 1 || got.M15 != 301.0/900 {
		t.Errorf("rates %+v, want 1, 1, %v", got, 301.0/900)
	}
	if sys := r.Rates(""); sys != got {
		t.Errorf("system rates %+v, want %+v", sys, got)
	}
}

func TestSeriesStep(t *testing.T) {
	tests := []struct {
		window, step, want time.Duration
		bad                bool
	}{
		{window: 15 * time.Minute, want: 15 * time.Second},
		{window: 5 * time.Minute, want: 5 * time.Second},
		{window: time.Minute, want: time.Second},
		{window: time.Hour, want: time.Minute},
		{window: 24 * time.Hour, want: 24 * time.Minute},
		{window: 20 * time.Minute, want: time.Minute},
		{window: 15 * time.Minute, step: 10 * time.Second, want: 10 * time.Second},
		{window: time.Hour, step: 5 * time.Minute, want: 5 * time.Minute},
		{window: time.Hour, step: 10 * time.Second, bad: true},
		{window: time.Minute, step: 1500 * time.Millisecond, bad: true},
		{window: time.Minute, step: 2 * time.Minute, bad: true},
		{window: time.Minute, step: -time.Second, bad: true},
	}
	for _, tc := range tests {
		got, err := metrics.SeriesStep(tc.window, tc.step)
		if tc.bad != (err != nil) || (!tc.bad && got != tc.want) {
			t.Errorf("SeriesStep(%v, %v) = %v, %v; want %v (error: %v)", tc.window, tc.step, got, err, tc.want, tc.bad)
		}
	}
}

func TestSeriesPoints(t *testing.T) {
	c := &clock{t: t0.Add(5*time.Minute + 5*time.Second)}
	r := metrics.New(metrics.Config{Now: c.now})
	f := &fn.Function{ID: "f1", Name: "one"}
	// Minute k (0..4) holds k+1 calls of 10·(k+1) ms; the second call of
	// each minute is a cold error.
	for k := range 5 {
		for i := range k + 1 {
			e := exec(f, t0.Add(time.Duration(k)*time.Minute+time.Duration(i)*time.Second), fn.StatusSuccess, float64(10*(k+1)))
			if i == 1 {
				e.Status, e.ColdStart, e.Error = fn.StatusError, true, &fn.ErrorInfo{Type: "E"}
			}
			r.Record(f, e)
		}
	}
	t.Run("per minute", func(t *testing.T) {
		pts := r.Series("f1", 6*time.Minute, time.Minute)
		if len(pts) != 6 {
			t.Fatalf("%d points, want 6", len(pts))
		}
		for i, p := range pts[:5] {
			k := uint64(i)
			if !p.Start.Equal(t0.Add(time.Duration(i)*time.Minute)) || p.Invocations != k+1 ||
				p.ByStatus["error"] != min(k, 1) || p.ColdStarts != min(k, 1) || p.P50Ms < float64(10*(k+1))*0.99 || p.P50Ms > float64(10*(k+1)) {
				t.Errorf("point %d: %+v", i, p)
			}
		}
		if last := pts[5]; last.Invocations != 0 || !last.Start.Equal(t0.Add(5*time.Minute)) {
			t.Errorf("current minute %+v", last)
		}
	})
	t.Run("per ten seconds", func(t *testing.T) {
		pts := r.Series("f1", 2*time.Minute, 10*time.Second)
		if len(pts) != 12 {
			t.Fatalf("%d points, want 12", len(pts))
		}
		var total uint64
		for _, p := range pts {
			total += p.Invocations
			if p.Start.Second()%10 != 0 {
				t.Errorf("point at %v: not aligned to its step", p.Start)
			}
		}
		// The window starts within minute 3 (3:10): minute 3's four calls
		// are at 3:00-3:03, so only minute 4's five count.
		if total != 5 || pts[len(pts)-1].Start != t0.Add(5*time.Minute) {
			t.Errorf("total %d, last point at %v; points %+v", total, pts[len(pts)-1].Start, pts)
		}
	})
}

// record adds n executions to f, spread over the minute before end, with
// durations drawn from a wide distribution; it returns the durations.
func record(r *metrics.Recorder, f *fn.Function, end time.Time, n int, rng *rand.Rand) []float64 {
	ds := make([]float64, n)
	for i := range ds {
		ds[i] = math.Exp(rng.NormFloat64()*2) * 3
		e := exec(f, end.Add(-time.Duration(i%60)*time.Second), fn.StatusSuccess, ds[i])
		if i%10 == 0 {
			e.ColdStart, e.InitMs = true, 50+float64(i%7)
		}
		if i%13 == 0 {
			e.Status, e.Error = fn.StatusTimeout, &fn.ErrorInfo{Type: "Runtime.Timeout"}
		}
		e.PeakMemoryKiB = int64(10_000 + i)
		r.Record(f, e)
	}
	return ds
}

func TestMinutesSurviveRestart(t *testing.T) {
	st := newMemStore()
	c := &clock{t: t0}
	f := &fn.Function{ID: "f1", Name: "one"}
	g := &fn.Function{ID: "f2", Name: "two"}
	rng := rand.New(rand.NewPCG(3, 4))

	before := metrics.New(metrics.Config{Now: c.now, Store: st})
	if err := before.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	var durations []float64
	for k := range 3 { // three minutes of calls
		c.set(t0.Add(time.Duration(k+1) * time.Minute))
		durations = append(durations, record(before, f, c.now().Add(-time.Second), 500, rng)...)
		if err := before.Save(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	record(before, g, c.now(), 10, rng) // in the current minute, saved by Close
	want := before.Function("f1", time.Hour)
	wantSys := before.System(time.Hour)
	if err := before.Close(t.Context()); err != nil {
		t.Fatal(err)
	}

	c.set(t0.Add(5 * time.Minute))
	after := metrics.New(metrics.Config{Now: c.now, Store: st})
	if err := after.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := after.Function("f1", time.Hour)
	if got.Invocations != 1500 || got.Invocations != want.Invocations || got.ByStatus["timeout"] != want.ByStatus["timeout"] ||
		got.ColdStarts != want.ColdStarts || got.DurationMs != want.DurationMs || got.InitDurationMs != want.InitDurationMs ||
		got.PeakMemoryKiB != want.PeakMemoryKiB || len(got.Errors) != 1 || got.Errors[0] != want.Errors[0] {
		t.Fatalf("after restart:\n got %+v\nwant %+v", got, want)
	}
	// Percentiles of the merged minutes stay within 1% of the exact ones.
	sort.Float64s(durations)
	for _, q := range []struct {
		q   float64
		got float64
	}{{0.5, got.DurationMs.P50}, {0.95, got.DurationMs.P95}, {0.99, got.DurationMs.P99}} {
		if exact := durations[int(math.Ceil(q.q*float64(len(durations))))-1]; math.Abs(q.got-exact)/exact > 0.01 {
			t.Errorf("p%v after restart = %v, exact %v", q.q*100, q.got, exact)
		}
	}
	if sys := after.System(time.Hour); sys.Invocations != wantSys.Invocations || sys.Invocations != 1510 {
		t.Errorf("system after restart: %d invocations, want %d", sys.Invocations, wantSys.Invocations)
	}
	// A short window reaching back before the restart uses the minutes.
	if s := after.Function("f2", 5*time.Minute); s.Invocations != 10 {
		t.Errorf("f2 over 5m after restart: %d invocations, want 10", s.Invocations)
	}
	// So does a series by the minute.
	var total uint64
	for _, p := range after.Series("f1", 10*time.Minute, time.Minute) {
		total += p.Invocations
	}
	if total != 1500 {
		t.Errorf("series after restart adds up to %d, want 1500", total)
	}
	// Calls after the restart add to the restored figures, and the next
	// save writes the sum.
	record(after, f, c.now(), 7, rng)
	if err := after.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	again := metrics.New(metrics.Config{Now: c.now, Store: st})
	if err := again.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := again.Function("f1", time.Hour).Invocations; n != 1507 {
		t.Errorf("after a second restart: %d invocations, want 1507", n)
	}
}

func TestSaveWritesOnlyWhatChanged(t *testing.T) {
	st := newMemStore()
	c := &clock{t: t0}
	r := metrics.New(metrics.Config{Now: c.now, Store: st})
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	f := &fn.Function{ID: "f1", Name: "one"}
	r.Record(f, exec(f, t0, fn.StatusSuccess, 1))
	save := func() {
		t.Helper()
		if err := r.Save(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	save()
	save()
	c.set(t0.Add(time.Minute))
	r.Record(f, exec(f, c.now(), fn.StatusSuccess, 1))
	save()
	if want := []int{2, 0, 2}; len(st.saves) != 3 || st.saves[0] != want[0] || st.saves[1] != want[1] || st.saves[2] != want[2] {
		t.Errorf("minutes per save %v, want %v (system and function, then nothing, then the new minute)", st.saves, want)
	}

	// A failed save is retried by the next.
	st.fail = errors.New("disk full")
	r.Record(f, exec(f, c.now(), fn.StatusSuccess, 1))
	if err := r.Save(t.Context()); err == nil {
		t.Fatal("Save with a failing store succeeded")
	}
	st.fail = nil
	save()
	if got := st.saves[len(st.saves)-1]; got != 2 {
		t.Errorf("save after a failure wrote %d minutes, want 2", got)
	}
}

func TestForgetDeletesSavedMinutes(t *testing.T) {
	st := newMemStore()
	c := &clock{t: t0}
	r := metrics.New(metrics.Config{Now: c.now, Store: st})
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	f := &fn.Function{ID: "f1", Name: "one"}
	r.Record(f, exec(f, t0, fn.StatusSuccess, 1))
	if err := r.Save(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st.count("f1") != 1 {
		t.Fatalf("saved %d minutes of f1, want 1", st.count("f1"))
	}
	r.Forget("f1")
	r.Record(f, exec(f, t0, fn.StatusSuccess, 1)) // a call that ends after the delete
	if err := r.Save(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := st.count("f1"); n != 0 {
		t.Errorf("%d minutes of a deleted function remain", n)
	}
	if n := r.Function("f1", time.Minute).Invocations; n != 0 {
		t.Errorf("deleted function still has %d invocations", n)
	}
	if n := r.System(time.Minute).Invocations; n != 2 {
		t.Errorf("system: %d invocations, want 2", n)
	}
}

func TestStartPrunesPastRetention(t *testing.T) {
	st := newMemStore()
	c := &clock{t: t0}
	r := metrics.New(metrics.Config{Now: c.now, Store: st, Retention: 48 * time.Hour})
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(-48 * time.Hour); !st.pruned.Equal(want) {
		t.Errorf("pruned before %v, want %v", st.pruned, want)
	}
}
