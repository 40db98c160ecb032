package e2e_test

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// codeView is a function's code as GET /api/functions/{id} shows it.
type codeView struct {
	ID       string            `json:"id"`
	Revision int               `json:"revision"`
	Files    map[string]string `json:"files"`
	CodeInfo struct {
		SHA256 string `json:"sha256"`
		Files  []struct {
			Path string `json:"path"`
			Size int64  `json:"size"`
			Mode uint32 `json:"mode"`
		} `json:"files"`
	} `json:"codeInfo"`
	BuildStatus struct {
		State, Error, Log string
	} `json:"buildStatus"`
}

// in returns n for a subtest: its helpers fail t, not the parent test.
func (n *nimbus) in(t *testing.T) *nimbus {
	c := *n
	c.t = t
	return &c
}

func (n *nimbus) code(name string) codeView {
	n.t.Helper()
	var v codeView
	if st := n.do("GET", "/api/functions/"+name, nil, &v); st != 200 {
		n.t.Fatalf("GET %s: status %d", name, st)
	}
	return v
}

// TestUICode drives a function's code through its page in Chromium:
// files edited in a tree, an archive uploaded through the file input,
// and dependency builds that fail.
func TestUICode(t *testing.T) {
	// No package index: pip finds nothing in an empty directory, and so
	// never tries the internet.
	n := start(t, "NIMBUS_PIP_FIND_LINKS="+t.TempDir())
	const mainPy = "from lib.util import greet\n\ndef handler(event, context):\n    return greet(event.get(\"name\", \"world\"))\n"
	const utilPy = "GREETING = \"Hello\"\n\ndef greet(name):\n    return f\"{GREETING}, {name}!\"\n"
	n.create(function{Name: "ui-files", Runtime: "python", Files: map[string]string{"main.py": mainPy, "lib/util.py": utilPy}})

	t.Run("edit a second file", func(t *testing.T) {
		n := n.in(t)
		ctx := browser(t)
		run := runner(t, ctx)
		run(chromedp.Navigate(n.url+"/#/functions/ui-files"), chromedp.WaitVisible(chromedp.CSS("#file-tree")))
		// Both files are in the tree, nested by directory, and the
		// handler's module is the one open.
		paths, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#file-tree button")].map(b => b.dataset.path)`))
		if err != nil || strings.Join(paths, ",") != "lib/util.py,main.py" {
			t.Fatalf("tree lists %q (%v), want lib/util.py and main.py", paths, err)
		}
		waitText(t, ctx, "#file-tree li.dir", "lib/")
		if cur := currentFile(t, ctx); cur != "main.py" {
			t.Errorf("the file open first is %q, want the handler's main.py", cur)
		}
		screenshot(t, ctx, "function-code")

		// Switch to lib/util.py from the keyboard, and change a word in it.
		run(chromedp.Focus(chromedp.CSS(`#file-tree button[data-path="lib/util.py"]`)), chromedp.KeyEvent("\r"))
		if cur := currentFile(t, ctx); cur != "lib/util.py" {
			t.Fatalf("after choosing lib/util.py the current file is %q", cur)
		}
		shown, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("textarea[data-path]")].filter(t => t.offsetParent).map(t => t.dataset.path)`))
		if err != nil || strings.Join(shown, ",") != "lib/util.py" {
			t.Fatalf("editors shown: %q (%v), want lib/util.py's alone", shown, err)
		}
		run(chromedp.Evaluate[chromedp.Void](`(() => {
			const ta = document.querySelector('textarea[data-path="lib/util.py"]');
			const at = ta.value.indexOf("Hello");
			ta.focus(); ta.setSelectionRange(at, at + "Hello".length);
		})()`), chromedp.KeyEvent("Howdy"))
		waitText(t, ctx, `#file-tree button[data-path="lib/util.py"]`, "(modified)")
		// Back to main.py and again to lib/util.py: the edit is kept.
		run(chromedp.Click(chromedp.CSS(`#file-tree button[data-path="main.py"]`)),
			chromedp.Click(chromedp.CSS(`#file-tree button[data-path="lib/util.py"]`)))
		kept, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`textarea[data-path="lib/util.py"]`)))
		if err != nil || !strings.Contains(kept, `GREETING = "Howdy"`) {
			t.Fatalf("lib/util.py after switching files: %q (%v)", kept, err)
		}

		run(chromedp.Click(chromedp.CSS("#save-code")))
		waitText(t, ctx, "#fn-summary", "revision 2")
		got := n.code("ui-files")
		if want := strings.Replace(utilPy, "Hello", "Howdy", 1); got.Files["lib/util.py"] != want || got.Files["main.py"] != mainPy || len(got.Files) != 2 {
			t.Errorf("files after the save: %q, want main.py unchanged and lib/util.py %q", got.Files, want)
		}
		var greeting string
		n.invoke("ui-files", map[string]string{"name": "Ada"}).decode(t, &greeting)
		if greeting != "Howdy, Ada!" {
			t.Errorf("the saved code answers %q, want Howdy, Ada!", greeting)
		}
	})

	t.Run("upload an archive", func(t *testing.T) {
		n := n.in(t)
		ctx := browser(t)
		run := runner(t, ctx)
		before := n.code("ui-files")
		data := make([]byte, 700) // not UTF-8: the code is no longer shown inline
		for i := range data {
			data[i] = byte(0x80 + i%0x7f)
		}
		archive := filepath.Join(t.TempDir(), "code.zip")
		writeZip(t, archive, map[string][]byte{"main.py": []byte(mainPy), "lib/util.py": []byte(utilPy), "data.bin": data})

		run(chromedp.Navigate(n.url+"/#/functions/ui-files"), chromedp.WaitVisible(chromedp.CSS("#file-tree")),
			chromedp.SetUploadFiles(chromedp.CSS("#archive"), []string{archive}),
			chromedp.Click(chromedp.CSS("#upload")))
		waitText(t, ctx, "#fn-summary", fmt.Sprintf("revision %d", before.Revision+1))

		got := n.code("ui-files")
		if got.CodeInfo.SHA256 == before.CodeInfo.SHA256 || got.CodeInfo.SHA256 == "" {
			t.Errorf("code hash %q after the upload, was %q", got.CodeInfo.SHA256, before.CodeInfo.SHA256)
		}
		var listed []string
		for _, f := range got.CodeInfo.Files {
			listed = append(listed, f.Path)
			if f.Path == "data.bin" && f.Size != int64(len(data)) {
				t.Errorf("data.bin listed with %d bytes, want %d", f.Size, len(data))
			}
		}
		if strings.Join(listed, ",") != "data.bin,lib/util.py,main.py" {
			t.Errorf("codeInfo.files %q, want data.bin, lib/util.py and main.py", listed)
		}
		if got.Files != nil {
			t.Errorf("code with a binary file is shown inline: %q", got.Files)
		}

		// The page lists it read-only: data.bin as binary, with its size.
		waitText(t, ctx, "#not-inline", "not UTF-8 text")
		waitText(t, ctx, `#file-tree button[data-path="data.bin"]`, "binary · 700 B")
		waitText(t, ctx, `#file-tree button[data-path="main.py"]`, "text")
		run(chromedp.Click(chromedp.CSS(`#file-tree button[data-path="data.bin"]`)))
		waitText(t, ctx, "#file-facts", "Binary file · 700 bytes · mode 0644")
		if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#code textarea, #save-code").length`)); err != nil || n != 0 {
			t.Errorf("code not shown inline still has %d editors or a save button (%v)", n, err)
		}
		run(chromedp.Click(chromedp.CSS(`#file-tree button[data-path="main.py"]`)))
		waitText(t, ctx, "#file-content", "from lib.util import greet")
		href, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("#download-code"), "href"))
		if err != nil || href.Value != "/api/functions/"+got.ID+"/code" {
			t.Errorf("download link %q (%v)", href.Value, err)
		}
		screenshot(t, ctx, "function-code-archive")
	})

	t.Run("create from an archive", func(t *testing.T) {
		n := n.in(t)
		ctx := browser(t)
		run := runner(t, ctx)
		archive := filepath.Join(t.TempDir(), "code") // no extension: its type is read from its bytes
		writeZip(t, archive, map[string][]byte{"main.py": []byte(mainPy), "lib/util.py": []byte(utilPy)})
		run(chromedp.Navigate(n.url+"/#/new"), chromedp.WaitVisible(chromedp.CSS("#name")),
			chromedp.SendKeys(chromedp.CSS("#name"), "ui-from-archive"),
			chromedp.SetUploadFiles(chromedp.CSS("#create-archive"), []string{archive}))
		waitText(t, ctx, "#create-archive-note", "The archive is the code")
		run(chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
		waitText(t, ctx, "h1", "ui-from-archive")
		got := n.code("ui-from-archive")
		if len(got.Files) != 2 || got.Files["main.py"] != mainPy || got.Files["lib/util.py"] != utilPy {
			t.Errorf("created from the archive with files %q", got.Files)
		}
		var greeting string
		n.invoke("ui-from-archive", map[string]string{"name": "Ada"}).decode(t, &greeting)
		if greeting != "Hello, Ada!" {
			t.Errorf("the function made from the archive answers %q", greeting)
		}
	})

	t.Run("failed builds", func(t *testing.T) {
		n := n.in(t)
		ctx := browser(t)
		run := runner(t, ctx)
		// Created with dependencies that cannot be built: created, failed.
		n.create(function{Name: "ui-deps-failed", Runtime: "python", Files: map[string]string{
			"main.py": "def handler(event, context):\n    return 1\n", "requirements.txt": "nimbus-no-such-package==1.0\n"}})
		if st := n.code("ui-deps-failed").BuildStatus.State; st != "failed" {
			t.Fatalf("build state %q after creating with a missing package, want failed", st)
		}
		run(chromedp.Navigate(n.url+"/#/functions/ui-deps-failed"), chromedp.WaitVisible(chromedp.CSS("#build-state")))
		waitText(t, ctx, "#build-state", "failed")
		waitText(t, ctx, "#build-error", "pip exited")
		waitText(t, ctx, "#build-log", "nimbus-no-such-package")
		if open, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector("#build-log-box").open`)); err != nil || !open {
			t.Errorf("the log of a failed build is closed (%v)", err)
		}
		screenshot(t, ctx, "function-build-failed")

		// A function that built, given a requirements.txt in the page
		// that cannot be built: the save is refused with the build's
		// error, the code stays as it was, and the build ran live.
		n.create(function{Name: "ui-deps", Runtime: "python", Files: map[string]string{"main.py": "def handler(event, context):\n    return 1\n"}})
		run(chromedp.Navigate(n.url+"/#/functions/ui-deps"), chromedp.WaitVisible(chromedp.CSS("#file-tree")),
			chromedp.WaitReady(chromedp.CSS(`#code[data-live="true"]`)),
			chromedp.SendKeys(chromedp.CSS("#new-file"), "requirements.txt"), chromedp.Click(chromedp.CSS("#add-file")),
			chromedp.SendKeys(chromedp.CSS(`textarea[data-path="requirements.txt"]`), "nimbus-no-such-package==2.0"))
		if cur := currentFile(t, ctx); cur != "requirements.txt" {
			t.Errorf("the file added is not the current one: %q", cur)
		}
		// Remember whether the build showed as running, with lines.
		run(chromedp.Evaluate[chromedp.Void](`(() => {
			window.liveLines = 0;
			const state = document.querySelector("#build-state"), log = document.querySelector("#build-log");
			new MutationObserver(() => {
				if (state.textContent === "building") window.liveLines = Math.max(window.liveLines, log.textContent.split("\n").filter(Boolean).length);
			}).observe(document.querySelector("#build"), { subtree: true, childList: true, characterData: true });
		})()`), chromedp.Click(chromedp.CSS("#save-code")))
		waitText(t, ctx, "#code-error", "Not saved")
		waitText(t, ctx, "#code-error", "No matching distribution")
		waitText(t, ctx, "#build-state", "failed")
		got := n.code("ui-deps")
		if _, ok := got.Files["requirements.txt"]; ok || got.Revision != 1 {
			t.Errorf("after a failed build the code changed: revision %d, files %q", got.Revision, got.Files)
		}
		if got.BuildStatus.State != "failed" {
			t.Errorf("stored build state %q, want failed", got.BuildStatus.State)
		}
		if kept, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`textarea[data-path="requirements.txt"]`))); err != nil || kept != "nimbus-no-such-package==2.0" {
			t.Errorf("the unsaved file after the refusal: %q (%v)", kept, err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			lines, err := chromedp.Run(ctx, chromedp.Evaluate[int](`window.liveLines`))
			if err == nil && lines >= 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the build never showed as running with its lines (%d lines, %v)", lines, err)
			}
			time.Sleep(100 * time.Millisecond)
		}

		// A path that is not clean is refused before anything is sent.
		run(chromedp.SetValue(chromedp.CSS("#file-path"), "../evil.py"), chromedp.Click(chromedp.CSS("#rename-file")))
		waitText(t, ctx, "#file-error", "not a clean relative path")

		// A 400 shows its message and marks what its field names: here
		// a line of main.py.
		run(chromedp.Click(chromedp.CSS("#delete-file")),
			chromedp.Click(chromedp.CSS(`#file-tree button[data-path="main.py"]`)),
			chromedp.Evaluate[chromedp.Void](`(() => {
				const ta = document.querySelector('textarea[data-path="main.py"]');
				ta.focus(); ta.setSelectionRange(ta.value.length, ta.value.length);
			})()`), chromedp.KeyEvent("def"),
			chromedp.Click(chromedp.CSS("#save-code")))
		waitText(t, ctx, "#code-error", "main.py line 3")
		marked, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('textarea[data-path="main.py"]').parentElement.getAttribute("aria-invalid")`))
		if err != nil || marked != "true" {
			t.Errorf("main.py's editor aria-invalid=%q (%v) after a syntax error in it", marked, err)
		}
		if got := n.code("ui-deps"); got.Files["main.py"] != "def handler(event, context):\n    return 1\n" {
			t.Errorf("main.py after a refused save: %q", got.Files["main.py"])
		}
	})
}

// runner returns a function that runs steps in ctx and fails t on error.
func runner(t *testing.T, ctx context.Context) func(...chromedp.Action[chromedp.Void]) {
	return func(steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatal(err)
		}
	}
}

// currentFile is the path of the tree's button marked aria-current.
func currentFile(t *testing.T, ctx context.Context) string {
	t.Helper()
	cur, err := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll('#file-tree button[aria-current="true"]')].map(b => b.dataset.path).join(",")`))
	if err != nil {
		t.Fatal(err)
	}
	return cur
}

func writeZip(t *testing.T, path string, files map[string][]byte) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, data := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
