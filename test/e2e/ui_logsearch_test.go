package e2e_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Log search across a function's executions: text, status and time
// range, paged.
func TestUILogSearch(t *testing.T) {
	n := start(t)
	n.create(function{Name: "logger", Runtime: "python", Code: "def handler(e, c):\n" +
		"    print(f\"item {e['n']} processed\")\n" +
		"    if e['n'] % 5 == 0:\n        raise ValueError(f\"bad item {e['n']}\")\n    return e['n']\n"})
	before := time.Now()
	for i := 1; i <= 25; i++ {
		n.do("POST", "/api/executions/logger", map[string]int{"n": i}, nil)
	}
	ctx := browser(t)
	run := runner(t, ctx)
	rows := func() []string {
		t.Helper()
		r, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#history tr")].map(r => r.innerText)`))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	run(chromedp.Navigate(n.url+"/#/functions/logger"), chromedp.WaitVisible(chromedp.CSS("#history-q")))
	waitJS(t, ctx, `document.querySelectorAll("#history tr").length === 20 && !document.querySelector("#more").hidden`, "a first page of 20, and more")

	// Text: one match, its matching line shown.
	run(chromedp.SendKeys(chromedp.CSS("#history-q"), "ITEM 17 "))
	waitJS(t, ctx, `document.querySelectorAll("#history tr").length === 1`, "one execution logged item 17")
	if r := rows(); !strings.Contains(r[0], "item 17 processed") || !strings.Contains(r[0], "success") {
		t.Errorf("the match: %q", r[0])
	}
	// An error message matches too; with a status filter.
	run(chromedp.Evaluate[chromedp.Void](`document.querySelector("#history-q").value = ""`), chromedp.SendKeys(chromedp.CSS("#history-q"), "bad item"))
	waitJS(t, ctx, `document.querySelectorAll("#history tr").length === 5`, "five errors say bad item")
	for _, r := range rows() {
		if !strings.Contains(r, "error") || !strings.Contains(r, "ValueError: bad item") {
			t.Errorf("an error row: %q", r)
		}
	}
	run(chromedp.SetValue(chromedp.CSS("#status-filter"), "success"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#status-filter").dispatchEvent(new Event("change"))`))
	waitText(t, ctx, "#history", "No executions match.")

	// Paged: 20 successes say "processed"; the rest come with Older.
	run(chromedp.Evaluate[chromedp.Void](`document.querySelector("#history-q").value = ""`), chromedp.SendKeys(chromedp.CSS("#history-q"), "processed"))
	waitJS(t, ctx, `document.querySelectorAll("#history tr").length === 20 && !document.querySelector("#more").hidden`, "a first page of 20 successes")
	run(chromedp.Click(chromedp.CSS("#more")))
	waitJS(t, ctx, `document.querySelector("#more").hidden`, "the second page is the last")
	if r := rows(); len(r) != 20 {
		// 20 successes in all (25 calls, 5 errors): the second page is empty.
		t.Errorf("%d rows after Older, want the 20 successes", len(r))
	}

	// A time range before the calls matches nothing; one around them all.
	setTime := func(sel string, at time.Time) {
		t.Helper()
		run(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => { const d = new Date(%q), el = document.querySelector(%q);
			el.value = new Date(d - d.getTimezoneOffset() * 60000).toISOString().slice(0, 19);
			el.dispatchEvent(new Event("change")); })()`, at.UTC().Format(time.RFC3339Nano), sel)))
	}
	run(chromedp.SetValue(chromedp.CSS("#status-filter"), ""),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#history-q").value = ""; document.querySelector("#status-filter").dispatchEvent(new Event("change"))`))
	setTime("#history-until", before.Add(-time.Second))
	waitText(t, ctx, "#history", "No executions match.")
	setTime("#history-until", time.Now().Add(time.Minute))
	setTime("#history-since", before.Add(-time.Second))
	waitJS(t, ctx, `document.querySelectorAll("#history tr").length === 20`, "the range around the calls has them")
	screenshot(t, ctx, "log-search")
}
