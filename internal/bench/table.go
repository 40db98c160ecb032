package bench

import (
	"fmt"
	"io"
	"strings"
)

// WriteTable prints the report as a Markdown table.
func (rep *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "| scenario | metric | Nimbus | baseline | ratio | note |\n|---|---|---|---|---|---|\n")
	for _, r := range rep.Results {
		base, ratio := "", ""
		if r.Baseline > 0 {
			base = fmt.Sprintf("%s %s (%s)", num(r.Baseline), r.Unit, r.BaselineName)
			ratio = fmt.Sprintf("%.2f", r.Ratio)
		}
		fmt.Fprintf(w, "| %s | %s | %s %s | %s | %s | %s |\n", r.Scenario, r.Metric, num(r.Nimbus), r.Unit, base, ratio, strings.ReplaceAll(r.Note, "|", "/"))
	}
}

func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3f", v)
}
