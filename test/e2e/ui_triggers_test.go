package e2e_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestUITriggers drives a function's triggers through its page in
// Chromium: its URL, a schedule and its next run, the async queue with a
// dead letter that is replayed once the function is fixed, the history's
// trigger column, and an async call from the invoke panel.
func TestUITriggers(t *testing.T) {
	n := start(t)
	spec := map[string]any{
		"name": "ui-trig", "runtime": "python", "code": asyncPy,
		"env":       map[string]string{"FAIL": "1"},
		"url":       map[string]any{"enabled": true, "auth": "none", "cors": map[string]any{"allowOrigins": []string{"https://app.example"}}},
		"async":     map[string]any{"maxRetries": 0},
		"schedules": []map[string]any{{"name": "new-year", "cron": "0 0 1 1 *", "timezone": "Europe/Paris"}}, // never fires in a test
	}
	if st := n.do("POST", "/api/functions", spec, nil); st != 201 {
		t.Fatalf("create: %d", st)
	}
	a, _ := n.enqueue("ui-trig", map[string]any{"order": 42})
	if r := n.final("ui-trig", a.ExecutionID, 60*time.Second); r.Status != "error" {
		t.Fatalf("the failing call ended %q, want error", r.Status)
	}
	eventually(t, 20*time.Second, "no dead letter", func() bool {
		return n.do("GET", "/api/functions/ui-trig/dead-letters/"+a.ExecutionID, nil, nil) == 200
	})

	ctx := browser(t)
	run := runner(t, ctx)
	run(chromedp.Navigate(n.url + "/#/functions/ui-trig"))
	waitText(t, ctx, "#triggers h2", "Triggers")
	run(chromedp.Evaluate[chromedp.Void](`performance.setResourceTimingBufferSize(100000)`)) // every fetch counted below

	// The URL, full, with its auth and CORS origins.
	if got := waitText(t, ctx, "#fn-url", "/fn/"); got != n.url+"/fn/ui-trig" {
		t.Errorf("URL shown %q, want %q", got, n.url+"/fn/ui-trig")
	}
	waitText(t, ctx, "#url-facts", "none: anyone")
	waitText(t, ctx, "#url-facts", "https://app.example")
	// The async settings: the retries set, the rest the defaults.
	settings := waitText(t, ctx, "#async-settings", "Retries")
	for _, want := range []string{"Retries0", "6 h (default)", "1m (default)"} {
		if !strings.Contains(strings.ReplaceAll(settings, "\n", ""), want) {
			t.Errorf("async settings %q lack %q", settings, want)
		}
	}
	// The schedule, with its next run: the first of January, ahead.
	waitText(t, ctx, "#schedules", "0 0 1 1 *")
	waitText(t, ctx, "#schedules", "Europe/Paris")
	next, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#schedules .next-run time").dateTime`))
	if when, perr := time.Parse(time.RFC3339, next); err != nil || perr != nil || !when.After(time.Now()) || when.In(paris(t)).Format("01-02 15:04") != "01-01 00:00" {
		t.Errorf("next run %q (%v %v), want midnight of a coming 1 January in Paris", next, err, perr)
	}
	waitText(t, ctx, "#schedules .next-run", "in ")

	// The queue figures and the dead letter.
	waitText(t, ctx, "#q-dead", "1")
	waitText(t, ctx, "#q-queued", "0")
	letter := waitText(t, ctx, "#dead-letters", "failing on purpose")
	if !strings.Contains(letter, a.ExecutionID[len(a.ExecutionID)-10:]) || !strings.Contains(letter, "ValueError") {
		t.Errorf("dead letter row %q, want its id and error", letter)
	}
	// Its event, on expand.
	run(chromedp.Click(chromedp.CSS("#dead-letters button.expand")))
	waitText(t, ctx, "#dead-letters .dl-event", `"order": 42`)
	expanded, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("#dead-letters button.expand"), "aria-expanded"))
	if err != nil || expanded.Value != "true" {
		t.Errorf("the expand button aria-expanded=%q (%v)", expanded.Value, err)
	}

	// Fixed, the function runs the replayed call: the dead letter goes,
	// and the history shows the new execution as an async one.
	if st := n.do("PUT", "/api/functions/ui-trig", map[string]any{"env": map[string]string{"FAIL": "0"}}, nil); st != 200 {
		t.Fatalf("fix the function: %d", st)
	}
	run(chromedp.Click(chromedp.CSS("#dead-letters button.replay")))
	waitText(t, ctx, "#dead-letters", "No dead letters.")
	waitText(t, ctx, "#q-dead", "0")
	var replayed string
	eventually(t, 30*time.Second, "no replayed execution in the history", func() bool {
		var h struct {
			Executions []asyncRecord `json:"executions"`
		}
		n.do("GET", "/api/executions/ui-trig/history", nil, &h)
		for _, e := range h.Executions {
			if e.ExecutionID != a.ExecutionID && e.Status == "success" {
				replayed = e.ExecutionID
				return e.Trigger == "async"
			}
		}
		return false
	})
	row := waitRow(t, ctx, replayed[len(replayed)-10:], "success")
	if !strings.Contains(row, "async") || !strings.Contains(row, "try 1") {
		t.Errorf("history row of the replay %q, want trigger async and try 1", row)
	}

	// An async call from the invoke panel answers its execution id at
	// once; it comes to the history as an async call.
	run(chromedp.SetValue(chromedp.CSS("#payload"), `{"sleep": 1}`),
		chromedp.Click(chromedp.CSS("#invoke-async")), chromedp.Click(chromedp.CSS("#invoke")))
	accepted := waitText(t, ctx, "#async-accepted", "Accepted (202)")
	id, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#async-accepted a")))
	if err != nil || len(id) != 24 || !strings.Contains(accepted, "queued") {
		t.Fatalf("async invoke shows %q, id %q (%v)", accepted, id, err)
	}
	row = waitRow(t, ctx, id[len(id)-10:], "success")
	if !strings.Contains(row, "async") {
		t.Errorf("history row of the async call %q, want trigger async", row)
	}

	// The queue figures are read again every few seconds on the page,
	// and no more once it is left.
	polls := func() int {
		t.Helper()
		c, err := chromedp.Run(ctx, chromedp.Evaluate[int](`performance.getEntriesByType("resource").filter(e => /\/api\/functions\/[^/]+\/async$/.test(new URL(e.name).pathname)).length`))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	before := polls()
	eventually(t, 10*time.Second, "the queue figures were not read again on the page", func() bool { return polls() > before })
	run(chromedp.Navigate(n.url+"/#/functions"), chromedp.WaitVisible(chromedp.CSS("table")))
	left := polls()
	time.Sleep(4 * time.Second)
	if after := polls(); after != left {
		t.Errorf("the queue figures were read %d times after leaving the page", after-left)
	}
}

// waitRow waits for the history row holding text with status, and
// answers its text.
func waitRow(t *testing.T, ctx context.Context, text, status string) string {
	t.Helper()
	var row string
	eventually(t, 30*time.Second, "no history row with "+text+" "+status, func() bool {
		rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#history tr")].map(r => r.innerText)`))
		if err != nil {
			return false
		}
		for _, r := range rows {
			if strings.Contains(r, text) && strings.Contains(r, status) {
				row = r
				return true
			}
		}
		return false
	})
	return row
}

func paris(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatalf("no time zone data: %v", err)
	}
	return loc
}
