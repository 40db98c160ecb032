package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// waitJS polls until expr (JavaScript) is true in the page.
func waitJS(t *testing.T, ctx context.Context, expr, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ok, err := chromedp.Run(tctx, chromedp.Evaluate[bool](`(() => { try { return !!(`+expr+`) } catch (e) { return false } })()`))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("never true (%v): %s", err, what)
		}
		if os.Getenv("UI_TRACE") != "" {
			t.Logf("waiting (%v): %s", err, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// evalJSON runs expr in the page and decodes its JSON.stringify'd value.
func evalJSON(t *testing.T, ctx context.Context, expr string, v any) {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(`+expr+`)`))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("%s = %s: %v", expr, s, err)
	}
}

// drawn is what a chart shows, read from its uPlot instance: x values
// (Unix seconds), one column per series (null a gap), the x range.
type drawn struct {
	X      []float64    `json:"x"`
	Y      [][]*float64 `json:"y"`
	Min    float64      `json:"min"`
	Max    float64      `json:"max"`
	Labels []string     `json:"labels"`
}

func chartOf(t *testing.T, ctx context.Context, id string) drawn {
	t.Helper()
	var d drawn
	evalJSON(t, ctx, fmt.Sprintf(`(() => { const u = nimbusCharts[%q].u; return { x: u.data[0], y: u.data.slice(1), min: u.scales.x.min, max: u.scales.x.max, labels: u.series.slice(1).map(s => s.label) } })()`, id), &d)
	return d
}

// at is the value of series k in the bucket of step seconds holding t.
func (d drawn) at(k int, t float64, step float64) (float64, bool) {
	b := math.Floor(t/step) * step
	for i, x := range d.X {
		if x == b {
			if v := d.Y[k][i]; v != nil {
				return *v, true
			}
			return 0, false
		}
	}
	return 0, false
}

func (d drawn) sum(k int) (s float64) {
	for _, v := range d.Y[k] {
		if v != nil {
			s += *v
		}
	}
	return s
}

// Calls made before the page opened are drawn at the time they ended,
// on an x-axis that is the stated window; gaps in latency are gaps;
// tooltips say values and units; legend entries toggle their series.
func TestUICharts(t *testing.T) {
	n := start(t)
	n.create(function{Name: "charted", Runtime: "python", Code: "def handler(e, c):\n    if e.get('fail'):\n        raise ValueError('no')\n    return e\n"})
	var ends []float64
	for i := range 4 {
		ex := execution{}
		n.do("POST", "/api/executions/charted", map[string]bool{"fail": i == 3}, &ex)
		st, err := time.Parse(time.RFC3339Nano, ex.StartedAt)
		if err != nil {
			t.Fatal(err)
		}
		ends = append(ends, float64(st.UnixNano())/1e9+ex.DurationMs/1000)
	}
	ctx := browser(t)
	run := runner(t, ctx)

	// The dashboard: the last 15 minutes in 15 s steps.
	run(chromedp.Navigate(n.url + "/#/"))
	waitJS(t, ctx, `nimbusCharts["dash-rate"].u.data[1].some(v => v > 0)`, "the dashboard's rate chart shows the calls made before it opened")
	rate := chartOf(t, ctx, "dash-rate")
	if w := rate.Max - rate.Min; math.Abs(w-900) > 0.5 {
		t.Errorf("dashboard x range %v..%v is %vs wide, want 900", rate.Min, rate.Max, w)
	}
	if now := float64(time.Now().UnixNano()) / 1e9; math.Abs(rate.Max-now) > 10 {
		t.Errorf("dashboard x range ends at %v, %vs from now", rate.Max, rate.Max-now)
	}
	if got := rate.sum(0) * 15; math.Abs(got-4) > 0.01 {
		t.Errorf("dashboard: %v calls drawn (rate × step), want 4", got)
	}
	if got := rate.sum(1) * 15; math.Abs(got-1) > 0.01 {
		t.Errorf("dashboard: %v errors drawn, want 1", got)
	}
	for _, end := range ends {
		if v, ok := rate.at(0, end, 15); !ok || v <= 0 {
			t.Errorf("dashboard: nothing drawn in the 15 s step of a call that ended at %v (x %v)", end, rate.X)
		}
	}
	lat := chartOf(t, ctx, "dash-latency")
	gaps := 0
	for i, x := range lat.X {
		r, _ := rate.at(0, x, 15)
		if (r == 0) != (lat.Y[0][i] == nil) {
			t.Errorf("latency at %v is %v with a rate of %v: want a gap (null) exactly where no call ended", x, lat.Y[0][i], r)
		}
		if lat.Y[0][i] == nil {
			gaps++
		}
	}
	if gaps == 0 || gaps == len(lat.X) {
		t.Errorf("latency: %d gaps in %d points", gaps, len(lat.X))
	}

	// A tooltip at the busiest step says its time, values and units.
	run(chromedp.Evaluate[chromedp.Void](`(() => {
		const u = nimbusCharts["dash-rate"].u, i = u.data[1].findIndex(v => v > 0);
		u.setCursor({ left: u.valToPos(u.data[0][i], "x"), top: 20 });
	})()`))
	tip := waitText(t, ctx, "#main .chart .chart-tip:not([hidden])", "invocations: ")
	if !strings.Contains(tip, "/s") || !strings.Contains(tip, "errors: ") {
		t.Errorf("tooltip %q: want invocations and errors with their unit /s", tip)
	}

	// The legend toggles a series, by keyboard as by mouse.
	run(chromedp.Focus(chromedp.CSS(`#main .chart .u-legend .u-series[aria-label="Show errors"]`)), chromedp.KeyEvent(" "))
	waitJS(t, ctx, `nimbusCharts["dash-rate"].u.series[2].show === false`, "Space on the legend's errors hides the series")
	pressed, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`#main .chart .u-legend .u-series[aria-label="Show errors"]`), "aria-pressed"))
	if err != nil || pressed.Value != "false" {
		t.Errorf("the hidden series' legend entry: aria-pressed %q (%v)", pressed.Value, err)
	}

	// A call made with the page open is drawn too, from the live stream.
	n.invoke("charted", map[string]bool{})
	waitJS(t, ctx, `Math.abs(nimbusCharts["dash-rate"].u.data[1].reduce((a, b) => a + b, 0) * 15 - 5) < 0.01`, "the dashboard draws the 5th call")

	// The function page: the last hour in minutes, switchable.
	run(chromedp.Navigate(n.url+"/#/functions/charted"), chromedp.WaitVisible(chromedp.CSS("#fn-window")))
	waitJS(t, ctx, `nimbusCharts["fn-count"].u.data[1].some(v => v > 0) && nimbusCharts["fn-latency"].u.data[0].length > 0`, "the function's charts are seeded")
	count, flat := chartOf(t, ctx, "fn-count"), chartOf(t, ctx, "fn-latency")
	for _, d := range []drawn{count, flat} {
		if w := d.Max - d.Min; math.Abs(w-3600) > 0.5 {
			t.Errorf("function charts: x range %v..%v is %vs wide, want 3600", d.Min, d.Max, w)
		}
	}
	if math.Abs(count.Max-flat.Max) > 2 {
		t.Errorf("the count and latency charts end %v and %v: one window for both", count.Max, flat.Max)
	}
	if count.sum(0) != 5 || count.sum(1) != 1 {
		t.Errorf("function page: %v calls, %v errors drawn; want 5 and 1", count.sum(0), count.sum(1))
	}
	for _, end := range ends {
		if v, ok := count.at(0, end, 60); !ok || v <= 0 {
			t.Errorf("function page: nothing in the minute of a call that ended at %v", end)
		}
		if _, ok := flat.at(0, end, 60); !ok {
			t.Errorf("function page: no latency in the minute of a call that ended at %v", end)
		}
	}
	// Zoom on drag (the next redraw keeps it); a double-click goes back
	// to the window.
	var box struct{ X, Y, W, H float64 }
	evalJSON(t, ctx, `(() => { const o = nimbusCharts["fn-count"].u.over; o.scrollIntoView({ block: "center" }); const r = o.getBoundingClientRect(); return { x: r.x, y: r.y, w: r.width, h: r.height } })()`, &box)
	y := box.Y + box.H/2
	run(chromedp.MouseEvent(chromedp.MouseMoved, box.X+box.W*0.3, y),
		chromedp.MouseEvent(chromedp.MousePressed, box.X+box.W*0.3, y, chromedp.ButtonLeft, chromedp.ClickCount(1)),
		chromedp.MouseEvent(chromedp.MouseMoved, box.X+box.W*0.45, y, chromedp.ButtonLeft),
		chromedp.MouseEvent(chromedp.MouseMoved, box.X+box.W*0.6, y, chromedp.ButtonLeft),
		chromedp.MouseEvent(chromedp.MouseReleased, box.X+box.W*0.6, y, chromedp.ButtonLeft, chromedp.ClickCount(1)))
	waitJS(t, ctx, `(u => u.scales.x.max - u.scales.x.min < 1500)(nimbusCharts["fn-count"].u)`, "a drag over 30% of the chart zooms in")
	run(chromedp.MouseClickXY(box.X+box.W/2, y, chromedp.ClickCount(2)))
	waitJS(t, ctx, `(u => Math.abs(u.scales.x.max - u.scales.x.min - 3600) < 0.5)(nimbusCharts["fn-count"].u)`, "a double-click goes back to the hour")
	// Resize: the charts follow their box (one column under 900 px).
	wide, _ := chromedp.Run(ctx, chromedp.Evaluate[float64](`nimbusCharts["fn-count"].u.width`))
	run(chromedp.EmulateViewport(700, 900))
	waitJS(t, ctx, fmt.Sprintf(`(u => Math.abs(u.width - %v) > 20 && Math.abs(u.width - u.root.parentElement.clientWidth) <= 1)(nimbusCharts["fn-count"].u)`, wide),
		"another window size: the chart takes its box's new width")
	run(chromedp.EmulateReset())

	run(chromedp.SetValue(chromedp.CSS("#fn-window"), "15m"), chromedp.Evaluate[chromedp.Void](`document.querySelector("#fn-window").dispatchEvent(new Event("change"))`))
	waitJS(t, ctx, `Math.abs(nimbusCharts["fn-latency"].u.scales.x.max - nimbusCharts["fn-latency"].u.scales.x.min - 900) < 0.5`, "15m: the latency chart covers 15 minutes")
	waitText(t, ctx, "#fn-step", "15 s")

	// The list: a sparkline of calls and errors over the hour per function.
	run(chromedp.Navigate(n.url+"/#/functions"), chromedp.WaitVisible(chromedp.CSS("#functions")))
	waitJS(t, ctx, `nimbusCharts["spark-charted"].u.data[0].length > 0`, "the sparkline is drawn")
	spark := chartOf(t, ctx, "spark-charted")
	if spark.sum(0) != 5 || spark.sum(1) != 1 || math.Abs(spark.Max-spark.Min-3600) > 0.5 {
		t.Errorf("sparkline: %v calls, %v errors over %vs; want 5, 1, 3600", spark.sum(0), spark.sum(1), spark.Max-spark.Min)
	}
}

// evalJSONString decodes s, JSON a page gave, into v.
func evalJSONString(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("%s: %v", s, err)
	}
}
