package e2e_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// An execution's event, result and error are collapsible JSON trees with
// a copy button; its logs can be searched and downloaded.
func TestUIExecutionDetail(t *testing.T) {
	n := start(t)
	n.create(function{Name: "detailed", Runtime: "python", Code: "def handler(e, c):\n" +
		"    print('alpha one')\n    print('beta two')\n    print('gamma three')\n" +
		"    if e.get('fail'):\n        raise KeyError('missing')\n" +
		"    return {'outer': {'inner': [1, 2, {'deep': True}]}, 'n': None}\n"})
	ok := n.invoke("detailed", map[string]any{"who": map[string]string{"name": "Ada"}})
	var failed execution
	n.do("POST", "/api/executions/detailed", map[string]bool{"fail": true}, &failed)
	if failed.Status != "error" {
		t.Fatalf("the failing call: %s", failed.Status)
	}
	ctx := browser(t)
	run := runner(t, ctx)

	run(chromedp.Navigate(n.url+"/#/functions/detailed/executions/"+ok.ExecutionID), chromedp.WaitVisible(chromedp.CSS("#exec-result")))
	waitText(t, ctx, "#exec-event", `"name": "Ada"`)
	waitText(t, ctx, "#exec-result", `"inner": [ 3 items`)
	run(chromedp.Click(chromedp.CSS(`button[aria-label="Expand all of the result"]`)))
	res := waitText(t, ctx, "#exec-result", `"deep": true`)
	if !strings.Contains(res, `"n": null`) {
		t.Errorf("result tree %q: want its null too", res)
	}
	// Levels open and close: all, then one by its summary.
	count := func(sel string) int {
		t.Helper()
		c, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(`+jsString(sel)+`).length`))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if all := count("#exec-result details"); all != 4 || count("#exec-result details[open]") == 0 {
		t.Errorf("result tree: %d levels (%d open), want 4 (root, outer, inner, its object)", all, count("#exec-result details[open]"))
	}
	run(chromedp.Click(chromedp.CSS(`button[aria-label="Collapse all of the result"]`)))
	if open := count("#exec-result details[open]"); open != 0 {
		t.Errorf("after Collapse all, %d levels open", open)
	}
	run(chromedp.Click(chromedp.CSS(`#exec-result > details > summary`)))
	if open := count("#exec-result details[open]"); open != 1 {
		t.Errorf("after a click on the root, %d levels open, want 1", open)
	}
	// Copy puts the value, as JSON, on the clipboard.
	run(chromedp.Evaluate[chromedp.Void](`navigator.clipboard.writeText = async s => { window.copied = s; }`),
		chromedp.Click(chromedp.CSS(`button[aria-label="Copy the result as JSON"]`)))
	waitJS(t, ctx, `typeof window.copied === "string"`, "the copy button wrote to the clipboard")
	copied, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`window.copied`))
	var got, want any
	if err := json.Unmarshal([]byte(copied), &got); err != nil {
		t.Fatalf("copied %q: %v", copied, err)
	}
	json.Unmarshal(ok.Result, &want)
	if g, _ := json.Marshal(got); string(g) != string(mustJSON(t, want)) {
		t.Errorf("copied %s, want the result %s", g, ok.Result)
	}

	// Logs: each line with when it began (the shims say), searched within
	// (matching lines only), downloaded whole.
	waitText(t, ctx, "#exec-log-count", "3 lines")
	if stamps, _ := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#exec-logs .ts")].map(e => e.textContent.trim())`)); len(stamps) != 3 ||
		!regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{3}$`).MatchString(stamps[0]) {
		t.Errorf("log lines' times %q, want one hh:mm:ss.mmm a line", stamps)
	}
	run(chromedp.SendKeys(chromedp.CSS("#exec-log-search"), "BETA"))
	waitText(t, ctx, "#exec-log-count", "1 of 3 lines match")
	logs, _ := textOf(ctx, "#exec-logs")
	if !strings.Contains(logs, "beta two") || strings.Contains(logs, "alpha") {
		t.Errorf("logs searched for BETA: %q", logs)
	}
	if marked, _ := textOf(ctx, "#exec-logs mark"); marked != "beta" {
		t.Errorf("the match marked: %q", marked)
	}
	run(chromedp.Evaluate[chromedp.Void](`(() => { const real = URL.createObjectURL; URL.createObjectURL = b => { window.downloaded = b; return real(b); }; })()`),
		chromedp.Click(chromedp.CSS("#exec-log-download")))
	dl, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.downloaded.text()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	// "time<TAB>line" for each line, the times within the call.
	started, _ := time.Parse(time.RFC3339Nano, ok.StartedAt)
	ended := started.Add(time.Duration(ok.DurationMs*float64(time.Millisecond)) + time.Second)
	var text []string
	for _, line := range strings.Split(strings.TrimSuffix(dl, "\n"), "\n") {
		at, l, _ := strings.Cut(line, "\t")
		when, err := time.Parse(time.RFC3339Nano, at)
		if err != nil || when.Before(started.Truncate(time.Millisecond)) || when.After(ended) {
			t.Errorf("downloaded line %q: its time is not within the call (%s + %.1f ms)", line, ok.StartedAt, ok.DurationMs)
		}
		text = append(text, l)
	}
	if strings.Join(text, "\n")+"\n" != ok.Logs {
		t.Errorf("downloaded logs %q, want the lines of %q", dl, ok.Logs)
	}

	// An error: its summary, and its fields as a tree.
	run(chromedp.Navigate(n.url+"/#/functions/detailed/executions/"+failed.ExecutionID), chromedp.WaitVisible(chromedp.CSS("#exec-error")))
	waitText(t, ctx, "#exec-error-summary", "KeyError")
	if e := waitText(t, ctx, "#exec-error", `"type": "KeyError"`); !strings.Contains(e, `"stack"`) {
		t.Errorf("error tree %q: want its stack", e)
	}
	screenshot(t, ctx, "execution-error")
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
