package autoscale

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"time"
)

// Call is one invocation in a trace.
type Call struct {
	At       time.Duration `json:"at"`       // arrival, from the trace's start
	Duration time.Duration `json:"duration"` // execution time
}

// Trace is one function's invocations, sorted by arrival.
type Trace struct {
	Name  string        `json:"name"`
	About string        `json:"about"` // the inter-arrival distribution, in words
	Span  time.Duration `json:"span"`  // the trace covers [0, Span)
	Calls []Call        `json:"-"`
}

// Day is 24 hours.
const Day = 24 * time.Hour

// Traces returns the synthetic trace set, each over the given number of days
// and deterministic for a seed (each trace draws from its own generator
// seeded by seed and its name). Execution times are uniform in a range.
//
//   - periodic-30m: every 30 min, each arrival moved by a uniform ±30 s jitter; runs 0.2–2 s.
//   - periodic-5m: every 5 min, jitter ±10 s; runs 0.1–1 s.
//   - bursty: bursts of 100–300 calls (uniform), exponential inter-arrivals of
//     mean 2 s within a burst, bursts separated by exponential gaps of mean 3 h;
//     runs 0.2–1.5 s (calls in a burst sometimes overlap).
//   - poisson-20s: exponential inter-arrivals, mean 20 s; runs 50–500 ms.
//   - poisson-5m: exponential inter-arrivals, mean 5 min; runs 0.1–1 s.
//   - rare-6h: exponential inter-arrivals, mean 6 h; runs 0.5–5 s.
//   - daily: once a day at 09:00 with a uniform ±15 min jitter; runs 10–60 s.
//   - diurnal (mixed): exponential inter-arrivals of mean 2 min from 08:00 to
//     18:00, none at night but a nightly job at 02:00 ±1 min; runs 0.1–1 s.
func Traces(days int, seed uint64) []Trace {
	span := time.Duration(days) * Day
	return []Trace{
		Periodic("periodic-30m", span, seed, 30*time.Minute, 30*time.Second, ms(200), ms(2000)),
		Periodic("periodic-5m", span, seed, 5*time.Minute, 10*time.Second, ms(100), ms(1000)),
		Bursty("bursty", span, seed, 3*time.Hour, 100, 300, 2*time.Second, ms(200), ms(1500)),
		Poisson("poisson-20s", span, seed, 20*time.Second, ms(50), ms(500)),
		Poisson("poisson-5m", span, seed, 5*time.Minute, ms(100), ms(1000)),
		Poisson("rare-6h", span, seed, 6*time.Hour, ms(500), ms(5000)),
		Periodic("daily", span, seed, Day, 15*time.Minute, 10*time.Second, 60*time.Second, 9*time.Hour),
		Diurnal("diurnal", span, seed),
	}
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// rng returns the generator of one trace.
func rng(name string, seed uint64) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(name))
	return rand.New(rand.NewPCG(seed, h.Sum64()))
}

func uniform(r *rand.Rand, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(r.Int64N(int64(hi-lo)))
}

func exponential(r *rand.Rand, mean time.Duration) time.Duration {
	return time.Duration(r.ExpFloat64() * float64(mean))
}

// finish sorts the calls and drops those outside [0, span).
func finish(name, about string, span time.Duration, calls []Call) Trace {
	slices.SortFunc(calls, func(a, b Call) int { return cmp.Compare(a.At, b.At) })
	calls = slices.DeleteFunc(calls, func(c Call) bool { return c.At < 0 || c.At >= span })
	return Trace{Name: name, About: about, Span: span, Calls: calls}
}

// Periodic calls every period, from offset[0] (default one period) on, each
// arrival moved by a uniform jitter in [-jitter, +jitter].
func Periodic(name string, span time.Duration, seed uint64, period, jitter, runMin, runMax time.Duration, offset ...time.Duration) Trace {
	r := rng(name, seed)
	start := period
	if len(offset) > 0 {
		start = offset[0]
	}
	var calls []Call
	for t := start; t < span; t += period {
		calls = append(calls, Call{At: t + uniform(r, -jitter, jitter+1), Duration: uniform(r, runMin, runMax)})
	}
	return finish(name, fmt.Sprintf("every %s ± %s (uniform)", period, jitter), span, calls)
}

// Poisson calls with exponential inter-arrival times of the given mean.
func Poisson(name string, span time.Duration, seed uint64, mean, runMin, runMax time.Duration) Trace {
	r := rng(name, seed)
	var calls []Call
	for t := exponential(r, mean); t < span; t += exponential(r, mean) {
		calls = append(calls, Call{At: t, Duration: uniform(r, runMin, runMax)})
	}
	return finish(name, fmt.Sprintf("exponential inter-arrivals, mean %s", mean), span, calls)
}

// Bursty calls in bursts of nMin to nMax calls (uniform), with exponential
// inter-arrivals of mean within a burst, bursts separated by exponential
// gaps of mean gap.
func Bursty(name string, span time.Duration, seed uint64, gap time.Duration, nMin, nMax int, within, runMin, runMax time.Duration) Trace {
	r := rng(name, seed)
	var calls []Call
	for t := exponential(r, gap); t < span; t += exponential(r, gap) {
		n := nMin + r.IntN(nMax-nMin+1)
		for range n {
			calls = append(calls, Call{At: t, Duration: uniform(r, runMin, runMax)})
			t += exponential(r, within)
		}
	}
	return finish(name, fmt.Sprintf("bursts of %d–%d calls, exponential inter-arrivals of mean %s within, exponential gaps of mean %s", nMin, nMax, within, gap), span, calls)
}

// Diurnal calls with exponential inter-arrivals of mean 2 min from 08:00 to
// 18:00 each day, and once at 02:00 ±1 min.
func Diurnal(name string, span time.Duration, seed uint64) Trace {
	r := rng(name, seed)
	var calls []Call
	for day := time.Duration(0); day < span; day += Day {
		calls = append(calls, Call{At: day + 2*time.Hour + uniform(r, -time.Minute, time.Minute), Duration: uniform(r, ms(100), ms(1000))})
		for t := day + 8*time.Hour + exponential(r, 2*time.Minute); t < day+18*time.Hour; t += exponential(r, 2*time.Minute) {
			calls = append(calls, Call{At: t, Duration: uniform(r, ms(100), ms(1000))})
		}
	}
	return finish(name, "exponential, mean 2m, 08:00–18:00; one call at 02:00 ± 1m", span, calls)
}
