package e2e_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/nimbusfaas/nimbus/internal/testenv"
)

// browser starts headless Chromium. In CI it must be there (.ci/run
// installs it); elsewhere the test says why it skips.
func browser(t *testing.T) context.Context {
	t.Helper()
	return browserFor(t, 2*time.Minute)
}

// browserFor is browser for a test that drives it for up to d.
func browserFor(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	testenv.Require(t, "chromium (make deps installs it)", err)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1366, 900),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, d)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// screenshot saves the page (PNG) to docs/screenshots when UPDATE_SCREENSHOTS is
// set, and always to the test's temp dir (so the capture itself is tested).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Sleep(300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	// From the top: a page scrolled by a click would show its sticky
	// header in the middle of the capture.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`)); err != nil {
		t.Fatal(err)
	}
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if len(buf) < 1000 {
		t.Fatalf("screenshot %s is empty", name)
	}
	dir := t.TempDir()
	if os.Getenv("UPDATE_SCREENSHOTS") != "" {
		dir = "../../docs/screenshots"
		os.MkdirAll(dir, 0o755)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644); err != nil {
		t.Fatal(err)
	}
}

func textOf(ctx context.Context, sel string) (string, error) {
	return chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
}

// waitText waits until the element's text contains want.
func waitText(t *testing.T, ctx context.Context, sel, want string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		tctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		s, err := textOf(tctx, sel)
		cancel()
		if err == nil && strings.Contains(s, want) {
			return s
		}
		last = s
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never contained %q; last text %q", sel, want, last)
	return ""
}

func TestUI(t *testing.T) {
	n := start(t)
	ctx := browser(t)
	run := func(steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatal(err)
		}
	}

	// Create a Python function from the default template.
	run(chromedp.Navigate(n.url+"/#/new"), chromedp.WaitVisible(chromedp.CSS("#name")))
	screenshot(t, ctx, "new-function")
	// Its runtime list is the server's runtime table (GET /api/runtimes).
	var served []struct {
		Name, Label string
		Available   bool
	}
	n.do("GET", "/api/runtimes", nil, &served)
	var want []string
	for _, r := range served {
		if r.Available {
			want = append(want, r.Name+"="+r.Label)
		} else {
			want = append(want, r.Name+"="+r.Label+" (unavailable)")
		}
	}
	shown, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#runtime option")].map(o => o.value + "=" + o.textContent)`))
	if err != nil || len(want) == 0 || strings.Join(shown, ", ") != strings.Join(want, ", ") {
		t.Errorf("runtime choices %q (%v), want the server's %q", shown, err, want)
	}
	// Whatever the server answers: labels and default handlers it renames
	// show as renamed.
	run(chromedp.Evaluate[chromedp.Void](`(() => {
		const real = window.fetch;
		window.fetch = async (url, opts) => {
			const resp = await real(url, opts);
			if (!String(url).endsWith("/api/runtimes")) return resp;
			const list = (await resp.json()).map(r => ({ ...r, label: "served " + r.label, defaultHandler: "served_" + r.name + ".handler" }));
			return new Response(JSON.stringify(list), { status: 200, headers: { "Content-Type": "application/json" } });
		};
		route(); // this page again, with the new fetch
	})()`))
	waitText(t, ctx, "#runtime", "served ")
	shown, err = chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#runtime option")].map(o => o.textContent + "|" + o.value)`))
	placeholder, perr := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("#handler"), "placeholder"))
	if err != nil || len(shown) != len(served) || !strings.HasPrefix(shown[0], "served ") || perr != nil || !strings.HasPrefix(placeholder.Value, "served_") {
		t.Errorf("with a server that renames its runtimes: choices %q (%v), handler placeholder %q (%v)", shown, err, placeholder.Value, perr)
	}
	run(chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#name"))) // the page's own fetch again
	run(chromedp.SendKeys(chromedp.CSS("#name"), "ui-hello"), chromedp.SendKeys(chromedp.CSS("#minInstances"), "1"),
		chromedp.SendKeys(chromedp.CSS("#concurrency"), "2"), chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
	run(chromedp.WaitVisible(chromedp.CSS("#invoke")))
	waitText(t, ctx, "#scaling", "At least 1 warm · 2 calls per instance")
	var made struct{ MinInstances, Concurrency int }
	n.do("GET", "/api/functions/ui-hello", nil, &made)
	if made.MinInstances != 1 || made.Concurrency != 2 {
		t.Errorf("created from the form: minInstances %d concurrency %d, want 1 and 2", made.MinInstances, made.Concurrency)
	}

	// Invoke it with the template's event: result and logs appear.
	run(chromedp.Click(chromedp.CSS("#invoke")))
	waitText(t, ctx, "#exec-result", "Hello, Ada!")
	waitText(t, ctx, "#exec-logs", "saying hello to Ada")
	// It is in the history.
	waitText(t, ctx, "#history", "success")
	screenshot(t, ctx, "function-detail")

	// Bad JSON is caught next to the payload, not sent.
	run(chromedp.SetValue(chromedp.CSS("#payload"), `{"name": `), chromedp.Click(chromedp.CSS("#invoke")))
	waitText(t, ctx, "#invoke-error", "not valid JSON")

	// The execution page shows event, result and logs.
	run(chromedp.Click(chromedp.CSS("#history a")), chromedp.WaitVisible(chromedp.CSS("#exec-event")))
	waitText(t, ctx, "#exec-event", `"name": "Ada"`)
	screenshot(t, ctx, "execution")

	// An API validation error appears next to the field that caused it.
	run(chromedp.Navigate(n.url+"/#/new"), chromedp.WaitVisible(chromedp.CSS("#name")),
		chromedp.SendKeys(chromedp.CSS("#name"), "ui-hello"), chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
	waitText(t, ctx, "#form-error", "already exists")
	invalid, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("#name"), "aria-invalid"))
	if err != nil || invalid.Value != "true" {
		t.Errorf("name field aria-invalid=%q (%v) after a name conflict", invalid.Value, err)
	}
	// A syntax error marks the code.
	run(chromedp.Navigate(n.url+"/#/new"), chromedp.WaitVisible(chromedp.CSS("#name")),
		chromedp.SendKeys(chromedp.CSS("#name"), "ui-broken"),
		chromedp.SetValue(chromedp.CSS(`textarea[data-path="main.py"]`), "def handler(event, context):\n    return (\n"),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
	waitText(t, ctx, "#form-error", "main.py line 2")
	marked, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('textarea[data-path="main.py"]').parentElement.getAttribute("aria-invalid")`))
	if err != nil || marked != "true" {
		t.Errorf("the editor of main.py aria-invalid=%q (%v) after a syntax error on its line 2", marked, err)
	}

	// The functions list shows it.
	run(chromedp.Navigate(n.url+"/#/functions"), chromedp.WaitVisible(chromedp.CSS("table")))
	waitText(t, ctx, "table", "ui-hello")
	screenshot(t, ctx, "functions")

	// The dashboard moves live when calls are made through the API: the
	// feed changes only through the event stream once it has loaded.
	run(chromedp.Navigate(n.url+"/#/"), chromedp.WaitVisible(chromedp.CSS("#k-invocations")))
	waitText(t, ctx, "#feed", "ui-hello") // seeded from history
	before := waitNumber(t, ctx, "#k-invocations")
	for i := range 3 {
		n.invoke("ui-hello", map[string]string{"name": fmt.Sprintf("api-%d", i)})
	}
	deadline := time.Now().Add(15 * time.Second) // a poll: a loaded machine takes its time
	for {
		feed, _ := textOf(ctx, "#feed")
		got := waitNumber(t, ctx, "#k-invocations")
		if strings.Count(feed, "ui-hello") >= 4 && got >= before+3 {
			break
		}
		if time.Now().After(deadline) {
			l, _ := textOf(ctx, "#live-text")
			t.Fatalf("15s after 3 calls: invocations %d (before %d), live %q, feed:\n%s", got, before, l, feed)
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitText(t, ctx, "#live-text", "live")
	screenshot(t, ctx, "dashboard")
	run(chromedp.Click(chromedp.CSS("#theme")))
	screenshot(t, ctx, "dashboard-dark")
}

func waitNumber(t *testing.T, ctx context.Context, sel string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := textOf(ctx, sel)
		if n, perr := strconv.Atoi(strings.TrimSpace(s)); err == nil && perr == nil {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is not a number: %q %v", sel, s, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestUIAsksForAPIKey(t *testing.T) {
	n := start(t, "NIMBUS_API_KEY=ui-key")
	n.create(function{Name: "keyed", Runtime: "python", Code: "def handler(e, c):\n    return 1\n"})
	ctx := browser(t)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(n.url+"/#/functions"),
		chromedp.WaitVisible(chromedp.CSS("#apikey")),
		chromedp.SendKeys(chromedp.CSS("#apikey"), "wrong"),
		chromedp.Click(chromedp.CSS(`#keyform button[type="submit"]`)),
	); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "#keyerror", "not accepted")
	// The key dialog is a view too: audited as the others (ui_a11y_test.go).
	for _, vi := range audit(t, ctx) {
		t.Errorf("key dialog: %s (%s): %s\n  %s", vi.ID, vi.Impact, vi.Help, strings.Join(vi.Nodes, "\n  "))
	}
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS("#apikey"), "ui-key"),
		chromedp.Click(chromedp.CSS(`#keyform button[type="submit"]`)),
	); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "table", "keyed")
	// The live event stream authenticates with the session cookie, and
	// the key is in no URL.
	waitText(t, ctx, "#live-text", "live")
	urls, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`performance.getEntriesByType("resource").map(e => e.name)`))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range urls {
		if strings.Contains(u, "ui-key") || strings.Contains(u, "key=") {
			t.Errorf("the key is in a URL the page loaded: %s", u)
		}
	}
	// Kept for the session: a reload does not ask again.
	if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("table"))); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "table", "keyed")
}
