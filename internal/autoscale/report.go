package autoscale

import (
	"fmt"
	"io"
	"time"
)

// Row compares the two policies on one trace.
type Row struct {
	Trace  string `json:"trace"`
	About  string `json:"about"`
	Fixed  Result `json:"fixed"`
	Hybrid Result `json:"hybrid"`
	// IdleRatio is Hybrid.IdleMBs / Fixed.IdleMBs (0 when Fixed is 0).
	IdleRatio float64 `json:"idleRatio"`
}

// Report is a comparison over a trace set; Total sums the rows (its ColdPct
// is over all invocations). MeanColdPct averages the rows' cold-start
// percentages, each function counting once whatever its rate.
type Report struct {
	Days       int     `json:"days"`
	Seed       uint64  `json:"seed"`
	MemoryMB   float64 `json:"memoryMB"`
	FixedKeep  string  `json:"fixedKeepAlive"`
	Rows       []Row   `json:"rows"`
	Total      Row     `json:"total"`
	FixedMean  float64 `json:"fixedMeanColdPct"`
	HybridMean float64 `json:"hybridMeanColdPct"`
}

// Compare replays every trace under FixedKeepAlive(fixed) and under a fresh
// Tracker(cfg), each instance holding memoryMB.
func Compare(traces []Trace, cfg Config, fixed time.Duration, memoryMB float64) *Report {
	rep := &Report{MemoryMB: memoryMB, FixedKeep: fixed.String()}
	tot := &rep.Total
	tot.Trace = "total"
	for _, tr := range traces {
		row := Row{Trace: tr.Name, About: tr.About,
			Fixed:  Simulate(tr, FixedKeepAlive(fixed), memoryMB),
			Hybrid: Simulate(tr, NewTracker(cfg), memoryMB)}
		row.IdleRatio = ratio(row.Hybrid.IdleMBs, row.Fixed.IdleMBs)
		rep.Rows = append(rep.Rows, row)
		add(&tot.Fixed, row.Fixed)
		add(&tot.Hybrid, row.Hybrid)
		rep.FixedMean += row.Fixed.ColdPct / float64(len(traces))
		rep.HybridMean += row.Hybrid.ColdPct / float64(len(traces))
	}
	for _, r := range []*Result{&tot.Fixed, &tot.Hybrid} {
		if r.Invocations > 0 {
			r.ColdPct = 100 * float64(r.ColdStarts) / float64(r.Invocations)
		}
	}
	tot.IdleRatio = ratio(tot.Hybrid.IdleMBs, tot.Fixed.IdleMBs)
	return rep
}

func add(to *Result, r Result) {
	to.Invocations += r.Invocations
	to.ColdStarts += r.ColdStarts
	to.IdleMBs += r.IdleMBs
	to.Prewarms += r.Prewarms
	to.WastedPrewarms += r.WastedPrewarms
	to.MaxInstances = max(to.MaxInstances, r.MaxInstances)
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// WriteTable prints the report as a Markdown table: per trace, the cold-start
// percentage and idle memory (GB·s) under each policy, and their ratio.
func (rep *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "| trace | calls | cold %% fixed %s | cold %% hybrid | idle GB·s fixed | idle GB·s hybrid | idle ratio | prewarms (wasted) |\n", rep.FixedKeep)
	fmt.Fprintf(w, "|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range append(rep.Rows, rep.Total) {
		name := r.Trace
		if r.Trace == "total" {
			name = "**total**"
		}
		fmt.Fprintf(w, "| %s | %d | %.2f | %.2f | %.1f | %.1f | %.3f | %d (%d) |\n", name, r.Fixed.Invocations,
			r.Fixed.ColdPct, r.Hybrid.ColdPct, r.Fixed.IdleMBs/1024, r.Hybrid.IdleMBs/1024, r.IdleRatio,
			r.Hybrid.Prewarms, r.Hybrid.WastedPrewarms)
	}
	fmt.Fprintf(w, "| mean per trace | | %.2f | %.2f | | | | |\n", rep.FixedMean, rep.HybridMean)
}
