package e2e_test

import (
	"encoding/json"
	"testing"

	"github.com/chromedp/chromedp"
)

// Saved test events: saved from the event editor under a name, stored
// with the function, picked to invoke with, deleted.
func TestUITestEvents(t *testing.T) {
	n := start(t)
	n.create(function{Name: "echo", Runtime: "python", Code: "def handler(e, c):\n    return e\n"})
	ctx := browser(t)
	run := runner(t, ctx)
	stored := func() map[string]string {
		t.Helper()
		var f struct {
			TestEvents []struct {
				Name  string          `json:"name"`
				Event json.RawMessage `json:"event"`
			} `json:"testEvents"`
		}
		n.do("GET", "/api/functions/echo", nil, &f)
		m := map[string]string{}
		for _, e := range f.TestEvents {
			m[e.Name] = string(e.Event)
		}
		return m
	}

	run(chromedp.Navigate(n.url+"/#/functions/echo"), chromedp.WaitVisible(chromedp.CSS("#test-event")))
	for _, ev := range []struct{ name, json string }{{"one", `{"x": 1}`}, {"two", `{"x": 2, "tag": "second"}`}} {
		run(chromedp.SetValue(chromedp.CSS("#payload"), ev.json), chromedp.SetValue(chromedp.CSS("#test-event-name"), ev.name),
			chromedp.Click(chromedp.CSS("#save-test-event")))
		waitText(t, ctx, "#test-event", ev.name)
	}
	if got := stored(); got["one"] != `{"x":1}` || got["two"] != `{"x":2,"tag":"second"}` || len(got) != 2 {
		t.Fatalf("stored test events %v", got)
	}

	// After a reload, picking one loads it, and "Invoke with it" runs it.
	run(chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#test-event")))
	waitText(t, ctx, "#test-event", "two")
	run(chromedp.SetValue(chromedp.CSS("#test-event"), "two"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#test-event").dispatchEvent(new Event("change"))`))
	waitJS(t, ctx, `JSON.parse(document.querySelector("#payload").value).tag === "second"`, "picking two loads it into the editor")
	run(chromedp.SetValue(chromedp.CSS("#test-event"), "one"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#test-event").dispatchEvent(new Event("change"))`),
		chromedp.Click(chromedp.CSS("#invoke-with")))
	waitText(t, ctx, "#result #exec-result", `"x": 1`)

	// Deleting one leaves the other.
	run(chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`), chromedp.Click(chromedp.CSS("#delete-test-event")))
	waitJS(t, ctx, `![...document.querySelectorAll("#test-event option")].some(o => o.value === "one")`, "one is gone from the list")
	if got := stored(); len(got) != 1 || got["two"] == "" {
		t.Errorf("after deleting one, stored %v", got)
	}
	// A name is required.
	run(chromedp.Evaluate[chromedp.Void](`document.querySelector("#test-event-name").value = ""`), chromedp.Click(chromedp.CSS("#save-test-event")))
	waitText(t, ctx, "#test-event-error", "Give the event a name")
}
