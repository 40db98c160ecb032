package soak_test

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"time"
)

// report holds a soak's figures, for the test log and docs/soak.md.
type report struct {
	when           time.Time
	d, interval    time.Duration
	capacity, rate float64
	baseline       sample
	samples        []sample
	tally          *tally
	tolerances     map[string]tolerance
	trends         map[string]trendResult
	quiet          sample
	quietErr       error
}

type trendResult struct {
	trend
	bound float64
	err   error
}

func newReport(d, interval time.Duration, capacity, rate float64, baseline sample, samples []sample, tl *tally, quiet sample, quietErr error) *report {
	r := &report{
		when: time.Now().UTC(), d: d, interval: interval, capacity: capacity, rate: rate,
		baseline: baseline, samples: samples, tally: tl, quiet: quiet, quietErr: quietErr,
		trends: map[string]trendResult{}, tolerances: tolerancesFor(d),
	}
	for _, q := range quantities {
		var at, v []float64
		for _, s := range samples {
			at = append(at, s.at.Seconds())
			v = append(v, s.values[q])
		}
		tol := r.tolerances[q]
		tr, err := checkTrend(at, v, tol)
		r.trends[q] = trendResult{trend: tr, bound: tol.bound(tr.Median), err: err}
	}
	return r
}

var headers = map[string]string{
	"rss_mib": "RSS MiB", "heap_mib": "heap MiB", "goroutines": "goroutines", "fds": "fds",
	"threads": "threads", "children": "children", "cgroups": "cgroups",
}

func format(q string, v float64) string {
	if strings.HasSuffix(q, "_mib") {
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

// summary is the report's opening lines.
func (r *report) summary() []string {
	total, skipped := 0, 0
	for _, outcomes := range r.tally.counts {
		for o, c := range outcomes {
			if o != "(cold)" {
				total += c
			}
		}
	}
	for _, c := range r.tally.skipped {
		skipped += c
	}
	return []string{
		fmt.Sprintf("run: %s UTC, %v of load, a sample every %v, %d CPUs, %s/%s", r.when.Format("2006-01-02 15:04"), r.d, r.interval, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH),
		fmt.Sprintf("capacity: %.0f warm calls/s (closed loop, 8 at once, Python and Node in turn); warm load %.0f calls/s (half), open loop", r.capacity, r.rate),
		fmt.Sprintf("requests checked: %d, unexpected: %d, ticks skipped with %d calls open: %d", total, r.tally.failed, maxInFlight, skipped),
	}
}

func (r *report) countRows() [][]string {
	var kinds []string
	for k := range r.tally.counts {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var rows [][]string
	for _, k := range kinds {
		var outs []string
		for o, c := range r.tally.counts[k] {
			outs = append(outs, fmt.Sprintf("%s %d", o, c))
		}
		sort.Strings(outs)
		rows = append(rows, []string{k, strings.Join(outs, ", ")})
	}
	return rows
}

func (r *report) sampleRows() [][]string {
	var rows [][]string
	row := func(label string, s sample) []string {
		out := []string{label}
		for _, q := range quantities {
			out = append(out, format(q, s.values[q]))
		}
		return out
	}
	rows = append(rows, row("baseline", r.baseline))
	for _, s := range r.samples {
		rows = append(rows, row(s.at.String(), s))
	}
	rows = append(rows, row("quiet", r.quiet))
	return rows
}

func (r *report) trendRows() [][]string {
	var rows [][]string
	for _, q := range quantities {
		tr := r.trends[q]
		verdict := "ok"
		if tr.err != nil {
			verdict = "FAIL: " + tr.err.Error()
		}
		rows = append(rows, []string{headers[q], format(q, tr.Median), format(q, tr.Last),
			fmt.Sprintf("%+.1f", tr.PerHour), fmt.Sprintf("%+.1f", tr.Low), fmt.Sprintf("%.1f", tr.bound),
			fmt.Sprintf("%+.1f", tr.Rise), format(q, r.tolerances[q].MinRise),
			fmt.Sprintf("%.0f", r.tolerances[q].Last), verdict})
	}
	return rows
}

var trendHeader = []string{"quantity", "median", "last", "slope/h", "low/h", "bound/h", "rise", "min rise", "last ≤ median +", "verdict"}

func (r *report) quietLine() string {
	if r.quietErr != nil {
		return "quiet: FAIL: " + r.quietErr.Error()
	}
	return "quiet: child processes and cgroups back at the baseline, goroutines and fds near it"
}

func sampleHeader() []string {
	h := []string{"t"}
	for _, q := range quantities {
		h = append(h, headers[q])
	}
	return h
}

// text is the report for the test log, in aligned columns.
func (r *report) text() string {
	var b strings.Builder
	for _, l := range r.summary() {
		b.WriteString(l + "\n")
	}
	b.WriteString(columns(append([][]string{{"calls", "outcomes"}}, r.countRows()...)))
	b.WriteString(columns(append([][]string{sampleHeader()}, r.sampleRows()...)))
	b.WriteString(columns(append([][]string{trendHeader}, r.trendRows()...)))
	b.WriteString(r.quietLine() + "\n")
	return b.String()
}

func columns(rows [][]string) string {
	width := map[int]int{}
	for _, row := range rows {
		for i, c := range row {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	for _, row := range rows {
		for i, c := range row {
			fmt.Fprintf(&b, "%-*s  ", width[i], c)
		}
		b.WriteString("\n")
	}
	return b.String() + "\n"
}

// markdown is the report for NIMBUS_SOAK_REPORT.
func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Soak figures: a %v run\n\nWritten by TestSoak (test/soak, `NIMBUS_SOAK=%v`); docs/soak.md explains them.\n\n", r.d, r.d)
	for _, l := range r.summary() {
		b.WriteString("- " + l + "\n")
	}
	b.WriteString("- " + r.quietLine() + "\n\n")
	b.WriteString(table([]string{"calls", "outcomes"}, r.countRows()))
	b.WriteString(table(trendHeader, r.trendRows()))
	b.WriteString(table(sampleHeader(), r.sampleRows()))
	return b.String()
}

func table(header []string, rows [][]string) string {
	var b strings.Builder
	b.WriteString("| " + strings.Join(header, " | ") + " |\n|")
	for range header {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, row := range rows {
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
	}
	return b.String() + "\n"
}
