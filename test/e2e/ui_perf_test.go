package e2e_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/heapprofiler"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// heapAfterGC is the page's used JavaScript heap (bytes) after a full
// garbage collection, read with the DevTools protocol.
func heapAfterGC(t *testing.T, ctx context.Context) float64 {
	t.Helper()
	used, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) (float64, error) {
		for range 2 { // a second pass frees what the first one's finalizers released
			if _, err := cdp.Call(ctx, tg, heapprofiler.CollectGarbage, cdp.Empty{}); err != nil {
				return 0, err
			}
		}
		r, err := cdp.Call(ctx, tg, runtime.GetHeapUsage, cdp.Empty{})
		return r.UsedSize, err
	})
	if err != nil {
		t.Fatalf("heap usage: %v", err)
	}
	return used
}

// load calls function name at up to perSecond calls a second until stop
// closes, from a few goroutines, and counts the calls answered.
func load(n *nimbus, name string, perSecond int, stop <-chan struct{}) *atomic.Int64 {
	var done atomic.Int64
	tick := time.NewTicker(time.Second / time.Duration(perSecond))
	slots := make(chan struct{}, 16)
	var wg sync.WaitGroup
	go func() {
		defer tick.Stop()
		for {
			select {
			case <-stop:
				wg.Wait()
				return
			case <-tick.C:
			}
			select {
			case slots <- struct{}{}:
			default:
				continue // the server is behind: skip this tick
			}
			wg.Go(func() {
				defer func() { <-slots }()
				resp, err := http.Post(n.url+"/api/executions/"+name, "application/json", bytes.NewReader([]byte(`{"n":1}`)))
				if err == nil {
					resp.Body.Close()
					done.Add(1)
				}
			})
		}
	}()
	return &done
}

// The dashboard paints with data quickly; a live session at up to 100
// calls a second holds its memory steady; a function with thousands of
// executions shows them a page at a time. NIMBUS_UI_SOAK sets the live
// session's length (60s by default; docs/ui-performance.md has the
// figures of a 10-minute run).
func TestUIPerformance(t *testing.T) {
	soak := time.Minute
	if v := os.Getenv("NIMBUS_UI_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("NIMBUS_UI_SOAK=%q: %v", v, err)
		}
		soak = d
	}
	n := start(t)
	n.create(function{Name: "perf", Runtime: "python", Code: "def handler(e, c):\n    print('tick')\n    return 1\n", MaxInstances: 4, Concurrency: 4})
	for range 20 {
		n.invoke("perf", map[string]int{"n": 1})
	}
	ctx := browserFor(t, soak+3*time.Minute)
	run := runner(t, ctx)

	// First paint with data: the mark the dashboard sets when its KPIs
	// and charts first hold the server's figures, from the start of the
	// navigation (Performance API, read over the DevTools protocol). The
	// best of three loads: the first also compiles the scripts.
	best := 1e9
	for i := range 3 {
		if i == 0 {
			run(chromedp.Navigate(n.url + "/#/"))
		} else {
			run(chromedp.Reload())
		}
		waitJS(t, ctx, `performance.getEntriesByName("nimbus:dashboard-data").length > 0`, "the dashboard has its data")
		ms, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`performance.getEntriesByName("nimbus:dashboard-data")[0].startTime`))
		if err != nil {
			t.Fatal(err)
		}
		fcp, _ := chromedp.Run(ctx, chromedp.Evaluate[float64](`(performance.getEntriesByName("first-contentful-paint")[0] || {}).startTime || 0`))
		t.Logf("dashboard load %d: first contentful paint %.0f ms, first paint with data %.0f ms", i+1, fcp, ms)
		best = min(best, ms)
	}
	// The goal is 300 ms on loopback (docs/ui-performance.md has the
	// figure); the bound here is generous so that a loaded 2-core CI
	// machine running a race-detector build never flakes.
	if best > 3000 {
		t.Errorf("the dashboard's first paint with data took %.0f ms at best, over the 3 s bound (goal 300 ms)", best)
	}

	// A live session: the dashboard under load, its heap after GC once
	// it is full (charts, feed) and again at the end.
	stop := make(chan struct{})
	calls := load(n, "perf", 100, stop)
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
	}()
	warm := min(soak/4, 15*time.Second)
	time.Sleep(warm)
	first, atStart := calls.Load(), heapAfterGC(t, ctx)
	began := time.Now()
	time.Sleep(soak - warm)
	atEnd := heapAfterGC(t, ctx)
	rate := float64(calls.Load()-first) / time.Since(began).Seconds()
	close(stop)
	t.Logf("live session %s at %.0f calls/s: JS heap after GC %.2f MB after %s, %.2f MB at the end (%+.1f%%)",
		soak, rate, atStart/1e6, warm, atEnd/1e6, 100*(atEnd-atStart)/atStart)
	if atEnd > atStart*1.25+0.5e6 { // noise measured here: a few per cent
		t.Errorf("the dashboard's heap grew from %.2f MB to %.2f MB over a %s live session", atStart/1e6, atEnd/1e6, soak)
	}
	if rate < 10 {
		t.Errorf("only %.0f calls/s reached the server: the session tested little", rate)
	}
	nodes, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("*").length`))
	if nodes > 5000 {
		t.Errorf("the dashboard holds %d DOM nodes after the session: its feed or charts grow", nodes)
	}

	// Thousands of executions: the history is paged, 20 rows a page, and
	// a page more is 20 rows more, however many there are.
	var total int
	var page struct {
		Executions []execution `json:"executions"`
	}
	n.do("GET", "/api/executions/perf/history?limit=1000", nil, &page)
	total = len(page.Executions)
	if total < 1000 {
		t.Logf("only %d executions (the machine is slow): the paging check runs on them", total)
	}
	run(chromedp.Navigate(n.url+"/#/functions/perf"), chromedp.WaitVisible(chromedp.CSS("#history")))
	waitJS(t, ctx, `document.querySelectorAll("#history tr").length === 20`, "a first page of 20 rows")
	run(chromedp.Evaluate[chromedp.Void](`window.longTasks = []; new PerformanceObserver(l => l.getEntries().forEach(e => window.longTasks.push(e.duration))).observe({ type: "longtask" })`))
	for i := 2; i <= 5; i++ {
		run(chromedp.Click(chromedp.CSS("#more")))
		waitJS(t, ctx, `document.querySelectorAll("#history tr").length === `+strconv.Itoa(20*i), "one more page of 20")
		run(chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, document.body.scrollHeight)`))
	}
	long, _ := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`window.longTasks`))
	t.Logf("history of %d+ executions: 5 pages of 20, long tasks while paging and scrolling: %v ms", total, long)
}
