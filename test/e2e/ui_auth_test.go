package e2e_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// received collects what the page of a tab receives: every response
// body (read through the DevTools protocol once it has loaded) and every
// message of its event streams.
type received struct {
	mu     sync.Mutex
	bodies []string
}

func captureResponses(ctx context.Context) *received {
	r := &received{}
	finished := chromedp.Events(ctx, network.LoadingFinished)
	messages := chromedp.Events(ctx, network.EventSourceMessageReceived)
	go func() {
		for ev, err := range finished {
			if err != nil {
				return
			}
			res, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) (network.GetResponseBodyResult, error) {
				return cdp.Call(ctx, tg, network.GetResponseBody, network.GetResponseBodyParams{RequestID: ev.RequestID})
			})
			if err == nil { // a body the browser no longer has is no body the page holds
				r.add(string(res.Body))
			}
		}
	}()
	go func() {
		for ev, err := range messages {
			if err != nil {
				return
			}
			r.add(ev.Data)
		}
	}()
	return r
}

func (r *received) add(s string) { r.mu.Lock(); r.bodies = append(r.bodies, s); r.mu.Unlock() }

// holding counts the bodies that contain s, of all received.
func (r *received) holding(s string) (n, all int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.bodies {
		if strings.Contains(b, s) {
			n++
		}
	}
	return n, len(r.bodies)
}

// The UI signs in with a key to a session held in an HttpOnly cookie,
// shows what the key's scopes allow, manages keys (secret shown once)
// and secrets (values never shown), and never keeps key material or a
// secret's value where the page's script could read it back.
func TestUIAuth(t *testing.T) {
	const adminKey = "ui-admin-key-4f1c2d9e8b7a6350"
	const plaintext = "pl41n-s3cret-value-7d6c5b4a"
	n := start(t, "NIMBUS_API_KEY="+adminKey)
	// The function answers a hash of its secret variable, never the value.
	n.create(function{Name: "orders-a", Runtime: "python", Code: "import hashlib, os\n\ndef handler(event, context):\n" +
		"    return {\"sha\": hashlib.sha256(os.environ.get(\"DB_PASSWORD\", \"\").encode()).hexdigest()}\n"})
	sum := sha256.Sum256([]byte(plaintext))
	wantSHA := hex.EncodeToString(sum[:])

	// The session cookie, as a client sees it: HttpOnly, SameSite=Strict.
	for _, tc := range []struct {
		name, key string
		status    int
	}{{"wrong key", "not-the-key", http.StatusUnauthorized}, {"right key", adminKey, http.StatusOK}} {
		req, _ := http.NewRequest("POST", n.url+"/api/session", strings.NewReader(fmt.Sprintf(`{"key":%q}`, tc.key)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", n.url)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Fatalf("POST /api/session with the %s: %d, want %d", tc.name, resp.StatusCode, tc.status)
		}
		if tc.status != http.StatusOK {
			continue
		}
		var session *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == "nimbus_session" {
				session = c
			}
		}
		if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Path != "/" {
			t.Errorf("session cookie %+v (Set-Cookie %q): want nimbus_session, HttpOnly, SameSite=Strict, Path=/", session, resp.Header.Values("Set-Cookie"))
		}
	}

	ctx := browserFor(t, 4*time.Minute)
	got := captureResponses(ctx)
	run := runner(t, ctx)
	keys := []string{adminKey} // key material: never in the page's storage
	// clean checks the page holds no secret value anywhere and no key in
	// its storage; shownKey is a new key's secret allowed in the DOM now.
	clean := func(t *testing.T, step, shownKey string) {
		t.Helper()
		var leaks []string
		evalJSON(t, ctx, fmt.Sprintf(`(() => {
			const s = %q, out = [];
			if (document.documentElement.outerHTML.includes(s)) out.push("the DOM");
			if ([...document.querySelectorAll("input, textarea, select")].some(i => i.value.includes(s))) out.push("a field's value");
			return out; })()`, plaintext), &leaks)
		for _, k := range append(keys, plaintext) {
			var where []string
			evalJSON(t, ctx, fmt.Sprintf(`(() => { const k = %q, out = [];
				if (document.cookie.includes(k)) out.push("document.cookie");
				for (const st of [localStorage, sessionStorage]) for (let i = 0; i < st.length; i++)
					if (st.key(i).includes(k) || st.getItem(st.key(i)).includes(k)) out.push(st === localStorage ? "localStorage" : "sessionStorage");
				if (k !== %q && document.documentElement.outerHTML.includes(k)) out.push("the DOM");
				return out; })()`, k, shownKey), &where)
			leaks = append(leaks, where...)
		}
		if len(leaks) > 0 {
			t.Errorf("%s: a secret value or key is in %q", step, leaks)
		}
		if c, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.cookie`)); err != nil || strings.Contains(c, "nimbus_session") {
			t.Errorf("%s: document.cookie %q (%v) shows the session cookie: it must be HttpOnly", step, c, err)
		}
		if k, all := got.holding(plaintext); k > 0 {
			t.Errorf("%s: %d of the %d responses the page received hold the secret's value", step, k, all)
		}
	}
	signIn := func(key string) {
		t.Helper()
		run(chromedp.WaitVisible(chromedp.CSS("#apikey")), chromedp.SetValue(chromedp.CSS("#apikey"), key),
			chromedp.Click(chromedp.CSS(`#keyform button[type="submit"]`)), chromedp.WaitNotVisible(chromedp.CSS("#keydialog")))
	}
	signOut := func() {
		t.Helper()
		run(chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#apikey")))
	}
	hash := func(h string) {
		t.Helper()
		run(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`location.hash = %q`, h)))
	}
	absent := func(step string, sels ...string) {
		t.Helper()
		for _, sel := range sels {
			if shown, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && e.offsetParent !== null })()`, sel))); err != nil || shown {
				t.Errorf("%s: %s is shown (%v)", step, sel, err)
			}
		}
	}

	// A wrong key is refused in the dialog; the right one signs in.
	run(chromedp.Navigate(n.url+"/#/functions"), chromedp.WaitVisible(chromedp.CSS("#apikey")),
		chromedp.SendKeys(chromedp.CSS("#apikey"), "wrong"), chromedp.Click(chromedp.CSS(`#keyform button[type="submit"]`)))
	waitText(t, ctx, "#keyerror", "not accepted")
	signIn(adminKey)
	waitText(t, ctx, "#functions", "orders-a")
	waitText(t, ctx, "#who", "admin")
	clean(t, "signed in as admin", "")

	// Two keys made on the Keys page: each secret shown once, then gone.
	hash("#/keys")
	run(chromedp.WaitVisible(chromedp.CSS("#key-form")))
	ids := map[string]string{}
	for _, k := range []struct {
		name, functions string
		scopes          []string
	}{{"orders-invoker", "orders-*", []string{"invoke"}}, {"deployer", "", []string{"read", "deploy"}}} {
		run(chromedp.SetValue(chromedp.CSS("#key-name"), k.name))
		if k.functions != "" {
			run(chromedp.SetValue(chromedp.CSS("#key-functions"), k.functions))
		}
		for _, s := range k.scopes {
			run(chromedp.Click(chromedp.CSS("#scope-" + s)))
		}
		run(chromedp.Click(chromedp.CSS("#create-key")), chromedp.WaitVisible(chromedp.CSS("#new-key-secret")))
		waitText(t, ctx, "#new-key-note", "only time it is shown")
		secret, err := textOf(ctx, "#new-key-secret")
		id, ierr := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#new-key-title .mono").textContent`))
		if err != nil || ierr != nil || secret == "" || !strings.HasPrefix(id, "nmb_") {
			t.Fatalf("the new key %s: secret %q (%v), id %q (%v)", k.name, secret, err, id, ierr)
		}
		keys = append(keys, secret)
		ids[k.name] = id
		clean(t, "key "+k.name+" shown once", secret)
		if vs := audit(t, ctx); len(vs) > 0 {
			t.Errorf("the new key's box: %+v", vs)
		}
		run(chromedp.Click(chromedp.CSS("#key-done")), chromedp.WaitNotPresent(chromedp.CSS("#new-key-secret")))
		if html, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`)); err != nil || strings.Contains(html, secret) {
			t.Errorf("after Done the key %s's secret is still in the DOM (%v)", k.name, err)
		}
		waitText(t, ctx, "#keys", id)
		clean(t, "key "+k.name+" dismissed", "")
	}
	waitText(t, ctx, "#keys", "orders-*")
	screenshot(t, ctx, "keys")
	invokerKey, deployerKey := keys[1], keys[2]

	// A secret: created with its value typed once, listed without it.
	hash("#/secrets")
	run(chromedp.WaitVisible(chromedp.CSS("#secret-form")), chromedp.SetValue(chromedp.CSS("#secret-name"), "db-password"),
		chromedp.SetValue(chromedp.CSS("#secret-value"), plaintext), chromedp.SetValue(chromedp.CSS("#secret-description"), "the orders database"),
		chromedp.Click(chromedp.CSS("#save-secret")))
	waitText(t, ctx, "#secrets", "db-password")
	clean(t, "secret created", "")
	screenshot(t, ctx, "secrets")

	// Referenced from the function's environment in the editor, saved, and
	// the function sees the value when it runs. A server without secret
	// references in env (they come with their own change) says so.
	envRefs := false
	t.Run("secret in env", func(t *testing.T) {
		n, run := n.in(t), runner(t, ctx)
		hash("#/functions/orders-a/edit")
		run(chromedp.WaitVisible(chromedp.CSS("#add-secret-env")), chromedp.Click(chromedp.CSS("#add-secret-env")),
			chromedp.SetValue(chromedp.CSS(`#env input[aria-label="Variable name"]:last-of-type`), "DB_PASSWORD"),
			chromedp.SetValue(chromedp.CSS("#env select.secret-pick"), "db-password"))
		clean(t, "secret chosen in the editor", "")
		run(chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
		const formError = `(document.querySelector("#form-error") || {}).textContent || ""`
		waitJS(t, ctx, `document.querySelector("#invoke") || `+formError, "the save is answered")
		if msg, _ := chromedp.Run(ctx, chromedp.Evaluate[string](formError)); strings.Contains(msg, "cannot unmarshal object") {
			t.Skipf("this server does not take secret references in env yet: %s", msg)
		}
		run(chromedp.WaitVisible(chromedp.CSS("#invoke")))
		envRefs = true
		var saved struct{ Env map[string]any }
		n.do("GET", "/api/functions/orders-a", nil, &saved)
		if ref, ok := saved.Env["DB_PASSWORD"].(map[string]any); !ok || ref["secret"] != "db-password" {
			t.Errorf("saved env %v: want DB_PASSWORD = {\"secret\": \"db-password\"}", saved.Env)
		}
		run(chromedp.Click(chromedp.CSS("#invoke")))
		waitText(t, ctx, "#exec-result", wantSHA)
		clean(t, "invoked with the secret", "")
		hash("#/functions/orders-a/edit")
		waitText(t, ctx, "#env", "secret:")
		if v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#env select.secret-pick").value`)); err != nil || v != "db-password" {
			t.Errorf("the settings show the reference as %q (%v), want db-password", v, err)
		}
		clean(t, "the reference shown again", "")
		hash("#/secrets")
		waitText(t, ctx, "#secrets", "orders-a") // used by
	})

	// The audit log shows who did what.
	hash("#/audit")
	waitText(t, ctx, "#audit", ids["deployer"])
	run(chromedp.Evaluate[chromedp.Void](`(i => { i.value = "db-password"; i.dispatchEvent(new Event("input")); })(document.querySelector("#audit-target"))`))
	waitJS(t, ctx, `[...document.querySelectorAll("#audit tr")].length > 0 && [...document.querySelectorAll("#audit tr")].every(r => r.textContent.includes("db-password"))`, "the audit log filtered by target")
	clean(t, "audit", "")
	screenshot(t, ctx, "audit")

	// The read and deploy key: no Keys or Secrets, functions made, no Run.
	signOut()
	clean(t, "signed out", "")
	signIn(deployerKey)
	waitText(t, ctx, "#who", "deploy")
	absent("deployer", `[data-nav="keys"]`, `[data-nav="secrets"]`, `[data-nav="audit"]`)
	hash("#/keys")
	waitText(t, ctx, "#scope-notice", `"admin"`)
	hash("#/new")
	run(chromedp.WaitVisible(chromedp.CSS("#name")), chromedp.SendKeys(chromedp.CSS("#name"), "orders-b"),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)), chromedp.WaitVisible(chromedp.CSS("#publish")))
	if st := n.do("GET", "/api/functions/orders-b", nil, nil); st != http.StatusOK {
		t.Errorf("the function the deployer made: GET %d", st)
	}
	waitText(t, ctx, "#invoke-off", `"invoke"`)
	absent("deployer's function page", "#invoke", "#invoke-async")
	clean(t, "deployer", "")

	// The invoke-only key: a notice and a form to call, nothing to edit.
	signOut()
	signIn(invokerKey)
	waitText(t, ctx, "#scope-notice", `"read"`)
	for _, h := range []string{"#/functions", "#/functions/orders-a/edit", "#/new"} {
		hash(h)
		waitJS(t, ctx, `document.querySelector("#scope-notice") && !document.querySelector("#functions")`, "the notice on "+h)
		absent("invoker on "+h, "#functions", `a[href="#/new"]`, "#delete", "#save-code", "#publish", "#name")
	}
	if vs := audit(t, ctx); len(vs) > 0 {
		t.Errorf("the invoke-only view: %+v", vs)
	}
	run(chromedp.SetValue(chromedp.CSS("#invoke-name"), "orders-a"), chromedp.Click(chromedp.CSS("#invoke")))
	if envRefs {
		waitText(t, ctx, "#exec-result", wantSHA)
	} else {
		waitText(t, ctx, "#exec-result", `"sha"`)
	}
	clean(t, "invoker", "")

	// A revoked key's session ends: its next call asks to sign in again.
	// The deployer signs in in a second browser (its own cookies); the
	// admin revokes its key on the Keys page.
	ctx2, cancel2 := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
	defer cancel2()
	run2 := runner(t, ctx2)
	run2(chromedp.Navigate(n.url+"/#/functions"), chromedp.WaitVisible(chromedp.CSS("#apikey")), chromedp.SetValue(chromedp.CSS("#apikey"), deployerKey),
		chromedp.Click(chromedp.CSS(`#keyform button[type="submit"]`)))
	waitText(t, ctx2, "#functions", "orders-b")
	signOut()
	signIn(adminKey)
	hash("#/keys")
	waitText(t, ctx, "#keys", ids["deployer"])
	run(chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`), chromedp.Click(chromedp.CSS(fmt.Sprintf(`button[data-key=%q]`, ids["deployer"]))))
	waitJS(t, ctx, fmt.Sprintf(`!document.querySelector('button[data-key=%q]')`, ids["deployer"]), "the revoked key leaves the list")
	run2(chromedp.Evaluate[chromedp.Void](`location.hash = "#/functions/orders-b"`), chromedp.WaitVisible(chromedp.CSS("#apikey")))
	waitText(t, ctx2, "#keyreason", "session has ended")
	clean(t, "after the revocation", "")
	if n, all := got.holding(`"authRequired"`); n == 0 || all < 10 {
		t.Errorf("%d responses captured, %d of them the session's: the checks of what the page received proved nothing", all, n)
	}
}
