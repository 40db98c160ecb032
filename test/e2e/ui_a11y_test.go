package e2e_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// axeViolation is one rule axe-core found broken, with where.
type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// audit runs axe-core (vendored in testdata, injected: the page never
// loads it) on the page and returns its serious and critical violations.
func audit(t *testing.T, ctx context.Context) []axeViolation {
	t.Helper()
	src, err := os.ReadFile("testdata/axe/axe.min.js")
	if err != nil {
		t.Fatalf("axe-core: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`void (window.axe || (() => {`+string(src)+`
		})())`)); err != nil {
		t.Fatalf("inject axe-core: %v", err)
	}
	var vs []axeViolation
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](`axe.run(document, { resultTypes: ["violations"] }).then(r => JSON.stringify(
		r.violations.filter(v => v.impact === "serious" || v.impact === "critical")
			.map(v => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + ": " + n.failureSummary) }))))`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("axe.run: %v", err)
	}
	evalJSONString(t, out, &vs)
	return vs
}

// tabReach presses Tab through the page and returns the controls it
// never reached: every visible, enabled link, button, field and
// tabindex=0 element must be.
func tabReach(t *testing.T, ctx context.Context) []string {
	t.Helper()
	const controls = `[...document.querySelectorAll('a[href], button:not([disabled]), input:not([disabled]):not([type="hidden"]), select:not([disabled]), textarea:not([disabled]), summary, [tabindex="0"]')]
		.filter(e => e.offsetParent !== null && !e.closest("[inert], dialog:not([open])"))`
	var n int
	if c, err := chromedp.Run(ctx, chromedp.Evaluate[int](`(() => { window.tabSeen = new Set(); const all = `+controls+`;
		all.forEach((e, i) => e.dataset.tabId = i);
		document.addEventListener("focusin", e => { if (e.target.dataset) window.tabSeen.add(e.target.dataset.tabId); }, true);
		all[0].focus(); // from the top
		return all.length; })()`)); err != nil {
		t.Fatal(err)
	} else {
		n = c
	}
	// Scrollable boxes take focus too (Chromium makes them reachable):
	// twice the controls is room enough.
	for i := range 2*n + 20 {
		if i%10 == 9 {
			if left, err := chromedp.Run(ctx, chromedp.Evaluate[int](`(`+controls+`).filter(e => !window.tabSeen.has(e.dataset.tabId)).length`)); err == nil && left == 0 {
				break
			}
		}
		// An editor keeps Tab to indent; Esc then Tab leaves it.
		if inEditor, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.activeElement.tagName === "TEXTAREA"`)); err == nil && inEditor {
			if err := chromedp.Do(ctx, chromedp.KeyEvent("\u001b")); err != nil {
				t.Fatal(err)
			}
		}
		if err := chromedp.Do(ctx, chromedp.KeyEvent("\t")); err != nil {
			t.Fatal(err)
		}
	}
	missed, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`(`+controls+`).filter(e => !window.tabSeen.has(e.dataset.tabId))
		.map(e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + " " + (e.getAttribute("aria-label") || e.textContent).trim().slice(0, 40))`))
	if err != nil {
		t.Fatal(err)
	}
	if n < 3 {
		t.Errorf("only %d controls found: the check would prove nothing", n)
	}
	return missed
}

// Every view, in the light and the dark theme, has no serious or
// critical axe-core violation; Tab reaches every control; the main area
// shows no focus ring of its own after a navigation.
func TestUIAccessibility(t *testing.T) {
	n := start(t)
	n.create(function{Name: "a11y", Runtime: "python", Code: "def handler(e, c):\n    print('hello')\n    if e.get('fail'):\n        raise ValueError('no')\n    return {'ok': True, 'list': [1, 2]}\n"})
	ok := n.invoke("a11y", map[string]any{"name": "Ada"})
	var failed execution
	n.do("POST", "/api/executions/a11y", map[string]bool{"fail": true}, &failed)
	n.do("PUT", "/api/functions/a11y", map[string]any{"testEvents": []map[string]any{{"name": "ada", "event": map[string]string{"name": "Ada"}}}}, nil)
	ctx := browser(t)
	run := runner(t, ctx)

	views := []struct{ name, hash, ready string }{
		{"dashboard", "#/", "#k-invocations"},
		{"functions", "#/functions", "#functions"},
		{"new function", "#/new", "#name"},
		{"function", "#/functions/a11y", "#test-event"},
		{"settings", "#/functions/a11y/edit", "#handler"},
		{"execution", "#/functions/a11y/executions/" + ok.ExecutionID, "#exec-result"},
		{"failed execution", "#/functions/a11y/executions/" + failed.ExecutionID, "#exec-error"},
		// Without keys the server allows everything: the admin pages too.
		{"keys", "#/keys", "#key-form"},
		{"secrets", "#/secrets", "#secret-form"},
		{"audit", "#/audit", "#audit-table"},
	}
	for _, theme := range []string{"light", "dark"} {
		run(chromedp.Navigate(n.url+"/"), chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`localStorage.setItem("nimbus.theme", %q)`, theme)))
		for _, v := range views {
			t.Run(theme+"/"+v.name, func(t *testing.T) {
				run(chromedp.Navigate(n.url+"/"+v.hash), chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(v.ready)))
				waitJS(t, ctx, fmt.Sprintf(`document.documentElement.dataset.theme === %q && !document.querySelector("#main > p.muted:only-child")`, theme), "the view is drawn in the theme")
				for _, vi := range audit(t, ctx) {
					t.Errorf("%s (%s): %s\n  %s", vi.ID, vi.Impact, vi.Help, strings.Join(vi.Nodes, "\n  "))
				}
				if theme == "light" {
					if ring, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => { const m = document.querySelector("#main"); m.focus(); return getComputedStyle(m).outlineStyle; })()`)); err != nil || ring != "none" {
						t.Errorf("the focused main area shows an outline %q (%v): focus is shown on controls only", ring, err)
					}
					if missed := tabReach(t, ctx); len(missed) > 0 {
						t.Errorf("Tab never reaches: %q", missed)
					}
				}
			})
		}
	}
}
