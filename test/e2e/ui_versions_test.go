package e2e_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestUIVersions drives a function's versions through its page in
// Chromium: two versions published with the button, the changed file in
// the diff of the second, an alias created, moved to a split and rolled
// back, a version an alias uses refused deletion, the alias invoked from
// the invoke panel, the history filtered by version, and an execution
// replayed against the draft beside its original.
func TestUIVersions(t *testing.T) {
	n := start(t)
	code := func(v string) string { return "def handler(event, context):\n    return '" + v + "'\n" }
	n.create(function{Name: "ui-rel", Runtime: "python", Code: code("one")})
	files := n.code("ui-rel").CodeInfo.Files
	if len(files) != 1 {
		t.Fatalf("the function's files: %+v", files)
	}
	file := files[0].Path

	ctx := browser(t)
	run := runner(t, ctx)
	// choose picks value in a select as a person does: with a change event.
	choose := func(sel, value string) {
		t.Helper()
		js := `(() => { const s = document.querySelector(` + jsString(sel) + `); s.value = ` + jsString(value) +
			`; s.dispatchEvent(new Event("change", { bubbles: true })); return s.value; })()`
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil || got != value {
			t.Fatalf("choose %s in %s: got %q (%v)", value, sel, got, err)
		}
	}
	// shot captures the page without the toasts of the last actions.
	shot := func(name string) {
		t.Helper()
		run(chromedp.Evaluate[chromedp.Void](`document.querySelectorAll(".toast").forEach(t => t.remove())`))
		screenshot(t, ctx, name)
	}
	run(chromedp.Navigate(n.url + "/#/functions/ui-rel"))
	waitText(t, ctx, "#versions", "No versions yet")

	// Publish v1 with a description; again, unchanged; then v2 after the
	// code changed through the API.
	run(chromedp.SetValue(chromedp.CSS("#publish-description"), "first cut"), chromedp.Click(chromedp.CSS("#publish")))
	waitText(t, ctx, "#publish-status", "version 1 published")
	waitText(t, ctx, "#versions", "first cut")
	run(chromedp.Click(chromedp.CSS("#publish")))
	waitText(t, ctx, "#publish-status", "unchanged: version 1")
	if st := n.do("PUT", "/api/functions/ui-rel", map[string]any{"code": code("two")}, nil); st != 200 {
		t.Fatalf("update: %d", st)
	}
	run(chromedp.Click(chromedp.CSS("#publish")))
	waitText(t, ctx, "#publish-status", "version 2 published")
	rows := waitText(t, ctx, "#versions", "v2")
	if !strings.Contains(rows, "v1") || strings.Index(rows, "v2") > strings.Index(rows, "v1") {
		t.Errorf("versions listed %q, want v2 above v1", rows)
	}

	// v2's diff: the changed file, and no configuration change.
	run(chromedp.Click(chromedp.CSS("#diff-toggle-2")))
	diff := waitText(t, ctx, "#version-diff-2", "changed")
	if !strings.Contains(diff, file) || !strings.Contains(diff, "Configuration") || strings.Contains(diff, "runtime") {
		t.Errorf("the diff of v2 %q, want %s changed and nothing else", diff, file)
	}
	expanded, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("#diff-toggle-2"), "aria-expanded"))
	if err != nil || expanded.Value != "true" {
		t.Errorf("the diff toggle aria-expanded=%q (%v)", expanded.Value, err)
	}

	// The alias "live" → 1, from the form.
	routes := func() string {
		t.Helper()
		s, _ := textOf(ctx, `#aliases tr[data-alias="live"] .routes`)
		return s
	}
	waitRoutes := func(want string) {
		t.Helper()
		eventually(t, 20*time.Second, "live never showed "+want+"; it shows "+routes(), func() bool { return routes() == want })
	}
	run(chromedp.SetValue(chromedp.CSS("#alias-name"), "live"))
	choose("#alias-version", "1")
	run(chromedp.Click(chromedp.CSS("#save-alias")))
	waitRoutes("1")
	// Moved to 2, with a tenth of the calls still on 1.
	run(chromedp.Click(chromedp.CSS(`#aliases tr[data-alias="live"] button.move`)))
	waitText(t, ctx, "#save-alias", "Move alias")
	choose("#alias-version", "2")
	choose("#alias-second", "1")
	run(chromedp.SetValue(chromedp.CSS("#alias-weight"), "10"), chromedp.Click(chromedp.CSS("#save-alias")))
	waitRoutes("2 (90%) · 1 (10%)")
	live := n.alias("ui-rel", "live")
	if live.Version != 2 || live.Weights["1"] != 0.1 {
		t.Fatalf("live after the move: %+v", live)
	}
	// Rolled back with one click: on 1 again, and its history says so.
	run(chromedp.Click(chromedp.CSS("#rollback-live")))
	waitRoutes("1")
	if live := n.alias("ui-rel", "live"); live.Version != 1 || len(live.Weights) != 0 {
		t.Fatalf("live after the rollback: %+v", live)
	}
	run(chromedp.Click(chromedp.CSS(`#aliases tr[data-alias="live"] .alias-history summary`)))
	if h := waitText(t, ctx, `#aliases tr[data-alias="live"] .alias-history ol`, "rollback"); !strings.Contains(h, "create") || !strings.Contains(h, "update") {
		t.Errorf("live's history %q, want create, update and rollback", h)
	}

	shot("versions")

	// Version 1 cannot go while live uses it: the API's reason shows.
	run(chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`), chromedp.Click(chromedp.CSS("#delete-version-1")))
	waitText(t, ctx, "#versions-error", "sends calls to version 1")
	if st := n.do("GET", "/api/functions/ui-rel/versions/1", nil, nil); st != 200 {
		t.Errorf("version 1 after a refused delete: %d", st)
	}

	// Invoke live from the invoke panel: version 1's result.
	choose("#invoke-qualifier", "live")
	run(chromedp.Click(chromedp.CSS("#invoke")))
	waitText(t, ctx, "#result #exec-version", "v1")
	if got := waitText(t, ctx, "#result #exec-result", `"one"`); strings.TrimSpace(got) != `"one"` {
		t.Errorf("live answered %q, want \"one\"", got)
	}
	// And the draft: the history filtered by version shows one of them.
	choose("#invoke-qualifier", "$LATEST")
	run(chromedp.Click(chromedp.CSS("#invoke")))
	waitText(t, ctx, "#result #exec-result", `"two"`)
	waitText(t, ctx, "#history", "$LATEST")
	choose("#version-filter", "1")
	eventually(t, 20*time.Second, "the history filtered by v1 still shows other versions", func() bool {
		s, err := textOf(ctx, "#history")
		return err == nil && strings.Contains(s, "v1") && !strings.Contains(s, "$LATEST")
	})

	// Replay live's execution against the draft: the two side by side.
	var hist struct {
		Executions []execution `json:"executions"`
	}
	// A rollout in progress shows on the alias.
	if st := n.do("PUT", "/api/functions/ui-rel/aliases/live", map[string]any{"rollout": map[string]any{"to": 2, "steps": []float64{0.5, 1}, "interval": "1h", "maxErrorRate": 0.05}}, nil); st != 200 {
		t.Fatalf("start a rollout: %d", st)
	}
	run(chromedp.Navigate(n.url + "/#/functions/ui-rel"))
	waitText(t, ctx, `[data-alias="live"] .rollout`, "Rolling out v2: step 1 of 2 (50%")
	n.do("GET", "/api/executions/ui-rel/history?version=1", nil, &hist)
	if len(hist.Executions) != 1 {
		t.Fatalf("executions of version 1: %+v", hist.Executions)
	}
	run(chromedp.Navigate(n.url + "/#/functions/ui-rel/executions/" + hist.Executions[0].ExecutionID))
	waitText(t, ctx, "#replay-qualifier", "live")
	choose("#replay-qualifier", "$LATEST")
	run(chromedp.Click(chromedp.CSS("#replay")))
	waitText(t, ctx, "#replay-original .side-result", `"one"`)
	waitText(t, ctx, "#replay-new .side-result", `"two"`)
	waitText(t, ctx, "#replay-original .version", "v1")
	waitText(t, ctx, "#replay-new .version", "$LATEST")
	if ch := waitText(t, ctx, "#replay-changes", "(the whole result)"); !strings.Contains(ch, `"one" → "two"`) {
		t.Errorf("the replay's changes %q, want \"one\" → \"two\"", ch)
	}
	shot("replay")
}

// aliasView is an alias as GET …/aliases/{name} shows it.
type aliasView struct {
	Version int                `json:"version"`
	Weights map[string]float64 `json:"additionalVersionWeights"`
}

func (n *nimbus) alias(function, name string) aliasView {
	n.t.Helper()
	var a aliasView
	if st := n.do("GET", "/api/functions/"+function+"/aliases/"+name, nil, &a); st != 200 {
		n.t.Fatalf("GET alias %s: %d", name, st)
	}
	return a
}

// jsString quotes s for JavaScript.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
