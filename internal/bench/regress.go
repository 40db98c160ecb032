package bench

import (
	"fmt"
	"math"
)

// Regressions compares the best figure of each scenario over runs (runs of
// the same benchmark, back to back) with ref, and describes each one that
// is past its tolerance. checked counts the figures compared.
//
// The tolerances are chosen so that a loaded 2-core machine does not cross
// them, while a real regression (a warm call several times slower, half
// the throughput, an instance twice the size) does:
//
//   - warm call p50: the latency Nimbus adds over the echo server, at most
//     3x the reference's plus 0.25 ms. Not the ratio: the echo baseline is
//     a few hundredths of a millisecond on a fast machine, so a ratio over
//     it swings with the baseline rather than with Nimbus.
//   - warm call p99 is not checked: a tail over a second of calls on a
//     shared machine measures the neighbours. `nimbus bench` reports it.
//   - throughput: at least a quarter of the reference's ratio to the echo
//     server. Both share the machine's load, but a worker is one more
//     process competing for it: with every core busy the ratio fell from
//     0.39 to 0.14.
//   - cold starts: at most 5x the reference's ratio to a fresh interpreter
//     (0.5 today: a cold start that costs half a fresh interpreter, as one
//     without a zygote or spare would). Cold starts vary most under load,
//     and so does the baseline from machine to machine (47–112 ms seen).
//   - memory (no baseline): at most 2x the reference; CPU load does not
//     change it.
//   - deploys with cached dependencies and cold starts with a layer are
//     not checked, even when ref holds them: each is a ratio of two Nimbus
//     figures of one kind (two deploys, two cold starts), as noisy as each
//     other on a shared machine, over the few samples of a short run (one
//     build gave 0.18 to 1.67 for the layer). What would break either is a
//     failed run instead: Run fails when such a deploy is not a cache hit,
//     or such a call is not a cold start importing from the layer.
//
// The best of several runs is judged, because noise only ever makes a
// figure worse: one fast run proves more than one slow run disproves.
func Regressions(ref *Report, runs []*Report) (problems []string, checked int) {
	want := map[string]Result{}
	for _, r := range ref.Results {
		want[key(r)] = r
	}
	best := map[string]Result{}
	var order []string
	for _, run := range runs {
		for _, got := range run.Results {
			k := key(got)
			r, ok := want[k]
			if !ok || !judged(got) {
				continue
			}
			b, seen := best[k]
			if !seen {
				order = append(order, k)
			}
			if !seen || score(r, got) < score(r, b) {
				best[k] = got
			}
		}
	}
	for _, k := range order {
		got, r := best[k], want[k]
		checked++
		if v, limit := score(r, got), limit(r); v > limit {
			problems = append(problems, describe(r, got, limit))
		}
	}
	return problems, checked
}

func key(r Result) string { return r.Scenario + "/" + r.Metric }

// judged reports whether Regressions judges a figure at all.
func judged(r Result) bool {
	switch r.Scenario {
	case "warm call":
		return r.Metric == "p50"
	case deployScenario, layerScenario:
		return false
	}
	return true
}

// score is the figure judged, oriented so that lower is better.
func score(ref, got Result) float64 {
	switch {
	case ref.Scenario == "warm call":
		return got.Nimbus - got.Baseline
	case ref.Unit == "1/s":
		if got.Ratio == 0 {
			return math.Inf(1)
		}
		return 1 / got.Ratio
	case ref.Baseline > 0:
		return got.Ratio
	}
	return got.Nimbus
}

// limit is the worst score ref tolerates.
func limit(ref Result) float64 {
	switch {
	case ref.Scenario == "warm call":
		return 3*(ref.Nimbus-ref.Baseline) + 0.25
	case ref.Unit == "1/s":
		return 4 / ref.Ratio
	case ref.Baseline > 0:
		return 5 * ref.Ratio
	}
	return 2 * ref.Nimbus
}

func describe(ref, got Result, limit float64) string {
	switch {
	case ref.Scenario == "warm call":
		return fmt.Sprintf("%s %s: Nimbus adds %.3f ms over the echo server at best, over the %.3f ms limit (reference %.3f ms)",
			got.Scenario, got.Metric, got.Nimbus-got.Baseline, limit, ref.Nimbus-ref.Baseline)
	case ref.Unit == "1/s":
		return fmt.Sprintf("%s: %.2f of the echo server's rate at best, under the %.2f limit (reference %.2f)",
			got.Scenario, got.Ratio, 1/limit, ref.Ratio)
	case ref.Baseline > 0:
		return fmt.Sprintf("%s %s: ratio %.2f to %s at best, over the %.2f limit (reference %.2f)",
			got.Scenario, got.Metric, got.Ratio, got.BaselineName, limit, ref.Ratio)
	}
	return fmt.Sprintf("%s %s: %.2f %s at best, over the %.2f limit (reference %.2f)",
		got.Scenario, got.Metric, got.Nimbus, got.Unit, limit, ref.Nimbus)
}
