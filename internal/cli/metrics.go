package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// Point is one step of a metrics series (GET /api/metrics/...?series=).
type Point struct {
	Start       time.Time         `json:"start"`
	Invocations uint64            `json:"invocations"`
	ByStatus    map[string]uint64 `json:"byStatus"`
	ColdStarts  uint64            `json:"coldStarts"`
	P50Ms       float64           `json:"p50Ms"`
	P95Ms       float64           `json:"p95Ms"`
}

// Errors is how many of the step's calls did not succeed.
func (p Point) Errors() uint64 { return p.Invocations - p.ByStatus["success"] }

// Latency summarises durations, in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	Mean float64 `json:"mean"`
	Max  float64 `json:"max"`
}

// Instances counts instances by state.
type Instances struct {
	Idle     int `json:"idle"`
	Busy     int `json:"busy"`
	Starting int `json:"starting"`
	Queued   int `json:"queued"`
	Active   int `json:"active"`
}

// Metrics is what GET /api/metrics/functions/{id} and /api/metrics/system
// say of a window (the fields the CLI shows).
type Metrics struct {
	FunctionID  string            `json:"functionId,omitempty"`
	Name        string            `json:"name,omitempty"`
	Window      string            `json:"window"`
	Invocations uint64            `json:"invocations"`
	ByStatus    map[string]uint64 `json:"byStatus"`
	PerSecond   float64           `json:"invocationsPerSecond"`
	ErrorRate   float64           `json:"errorRate"`
	ColdStarts  uint64            `json:"coldStarts"`
	DurationMs  Latency           `json:"durationMs"`
	Instances   Instances         `json:"instances"`
	InFlight    int               `json:"inFlight"`
	Series      []Point           `json:"series"`
}

// Errors is how many of the window's calls did not succeed.
func (m *Metrics) Errors() uint64 { return m.Invocations - m.ByStatus["success"] }

// FunctionMetrics returns the API's JSON and figures of one function over
// window, with a series of about 60 steps when series is true.
func (c *Client) FunctionMetrics(ctx context.Context, name string, window time.Duration, series bool) ([]byte, *Metrics, error) {
	return c.metrics(ctx, "/api/metrics/functions/"+url.PathEscape(name), window, series)
}

// SystemMetrics is FunctionMetrics for the whole server.
func (c *Client) SystemMetrics(ctx context.Context, window time.Duration, series bool) ([]byte, *Metrics, error) {
	return c.metrics(ctx, "/api/metrics/system", window, series)
}

func (c *Client) metrics(ctx context.Context, path string, window time.Duration, series bool) ([]byte, *Metrics, error) {
	q := url.Values{}
	if window > 0 {
		q.Set("window", window.String())
	}
	if series {
		q.Set("series", "true")
	}
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	b, err := c.get(ctx, path)
	if err != nil {
		return nil, nil, fmt.Errorf("metrics: %w", err)
	}
	m := new(Metrics)
	if err := json.Unmarshal(b, m); err != nil {
		return nil, nil, fmt.Errorf("metrics: %w", err)
	}
	return b, m, nil
}

// sparks are the eight heights of a sparkline, lowest first.
var sparks = []rune("▁▂▃▄▅▆▇█")

// Sparkline draws values as a line of bars, scaled from 0 to the largest;
// all zeroes draw the lowest bar.
func Sparkline(values []float64) string {
	hi := 0.0
	for _, v := range values {
		hi = max(hi, v)
	}
	var b strings.Builder
	for _, v := range values {
		i := 0
		if hi > 0 && v > 0 {
			i = int(math.Ceil(v/hi*float64(len(sparks)))) - 1
			i = min(max(i, 0), len(sparks)-1)
		}
		b.WriteRune(sparks[i])
	}
	return b.String()
}

// WriteMetrics writes a window's figures and, when it has a series, a
// sparkline each of calls, errors and p95 over it, with the range of each.
func WriteMetrics(w io.Writer, title string, m *Metrics, p Painter) error {
	tw := table(w)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s:\t%v\n", k, v) }
	row(p.Paint(title, "bold"), "last "+m.Window)
	row("Calls", fmt.Sprintf("%d (%.2f/s)", m.Invocations, m.PerSecond))
	errs := fmt.Sprintf("%d (%.1f%%)", m.Errors(), 100*m.ErrorRate)
	if m.Errors() > 0 {
		errs = p.Paint(errs, "red")
	}
	row("Errors", errs)
	row("Duration", fmt.Sprintf("p50 %s  p95 %s  p99 %s  max %s", ms(m.DurationMs.P50), ms(m.DurationMs.P95), ms(m.DurationMs.P99), ms(m.DurationMs.Max)))
	row("Cold starts", m.ColdStarts)
	row("Instances", fmt.Sprintf("%d active (%d busy, %d idle, %d starting), %d queued", m.Instances.Active, m.Instances.Busy, m.Instances.Idle, m.Instances.Starting, m.Instances.Queued))
	if len(m.Series) > 0 {
		calls, errors, p95 := make([]float64, len(m.Series)), make([]float64, len(m.Series)), make([]float64, len(m.Series))
		for i, pt := range m.Series {
			calls[i], errors[i], p95[i] = float64(pt.Invocations), float64(pt.Errors()), pt.P95Ms
		}
		step := ""
		if len(m.Series) > 1 {
			step = " per " + m.Series[1].Start.Sub(m.Series[0].Start).String()
		}
		row("Calls"+step, Sparkline(calls)+"  max "+num(maxOf(calls)))
		row("Errors"+step, p.Paint(Sparkline(errors), "red")+"  max "+num(maxOf(errors)))
		row("p95", Sparkline(p95)+"  max "+ms(maxOf(p95)))
	}
	return tw.Flush()
}

// FunctionRow is a line of a table of functions' figures (nimbus metrics
// without a name, nimbus top).
type FunctionRow struct {
	Name string
	*Metrics
}

// WriteFunctionRows writes functions' figures as a table, with a sparkline
// of each one's calls when it has a series.
func WriteFunctionRows(w io.Writer, rows []FunctionRow, p Painter) error {
	tw := table(w)
	fmt.Fprintln(tw, "NAME\tCALLS/S\tCALLS\tERRORS\tP50\tP95\tINSTANCES\tBUSY\tTREND")
	for _, r := range rows {
		errs := fmt.Sprint(r.Errors())
		if r.Errors() > 0 {
			errs = p.Paint(errs, "red")
		}
		trend := ""
		if len(r.Series) > 0 {
			calls := make([]float64, len(r.Series))
			for i, pt := range r.Series {
				calls[i] = float64(pt.Invocations)
			}
			trend = Sparkline(calls)
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%d\t%s\t%s\t%s\t%d\t%d\t%s\n", r.Name, r.PerSecond, r.Invocations, errs, ms(r.DurationMs.P50), ms(r.DurationMs.P95), r.Instances.Active, r.Instances.Busy, trend)
	}
	return tw.Flush()
}

func maxOf(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

func ms(v float64) string {
	switch {
	case v == 0:
		return "-"
	case v < 10:
		return fmt.Sprintf("%.2fms", v)
	case v < 1000:
		return fmt.Sprintf("%.0fms", v)
	}
	return fmt.Sprintf("%.2fs", v/1000)
}

func num(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// FunctionsMetrics returns the figures of every function over window
// (with series when asked), busiest first: by calls per second, then
// calls, then name.
func (c *Client) FunctionsMetrics(ctx context.Context, window time.Duration, series bool) ([]json.RawMessage, []FunctionRow, error) {
	_, fns, err := c.ListFunctions(ctx)
	if err != nil {
		return nil, nil, err
	}
	raws := make([]json.RawMessage, 0, len(fns))
	rows := make([]FunctionRow, 0, len(fns))
	for _, f := range fns {
		raw, m, err := c.FunctionMetrics(ctx, f.ID, window, series)
		if err != nil {
			if errors.Is(err, fn.ErrNotFound) {
				continue // deleted meanwhile
			}
			return nil, nil, err
		}
		raws = append(raws, raw)
		rows = append(rows, FunctionRow{Name: f.Name, Metrics: m})
	}
	slices.SortStableFunc(rows, func(a, b FunctionRow) int {
		switch {
		case a.PerSecond != b.PerSecond:
			return cmp.Compare(b.PerSecond, a.PerSecond)
		case a.Invocations != b.Invocations:
			return cmp.Compare(b.Invocations, a.Invocations)
		}
		return strings.Compare(a.Name, b.Name)
	})
	return raws, rows, nil
}

// WriteTop writes one screen of nimbus top: the server's figures over
// the last minute, then its functions' (rows), busiest first.
func WriteTop(w io.Writer, url string, now time.Time, sys *Metrics, rows []FunctionRow, p Painter) error {
	fmt.Fprintf(w, "%s  %s  %s\n", p.Paint("nimbus top", "bold"), url, now.Local().Format("15:04:05"))
	fmt.Fprintf(w, "calls %.2f/s  errors %d of %d  p95 %s  in flight %d  instances %d (%d busy)  last %s\n\n",
		sys.PerSecond, sys.Errors(), sys.Invocations, ms(sys.DurationMs.P95), sys.InFlight, sys.Instances.Active, sys.Instances.Busy, sys.Window)
	return WriteFunctionRows(w, rows, p)
}
