package web_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/cli"
	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/testenv"
	"github.com/nimbusfaas/nimbus/internal/web"
)

// The vendored uPlot is the one its README pins: the files served are
// those whose sha256 it lists.
func TestVendoredUPlotIsPinned(t *testing.T) {
	readme, err := os.ReadFile("static/vendor/uplot/README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := regexp.MustCompile("(?m)^\\| (\\S+) \\| `([0-9a-f]{64})` \\|$").FindAllStringSubmatch(string(readme), -1)
	if len(rows) != 3 {
		t.Fatalf("README lists %d files with their sha256, want 3", len(rows))
	}
	ui := web.Handler()
	for _, r := range rows {
		rec := httptest.NewRecorder()
		ui.ServeHTTP(rec, httptest.NewRequest("GET", "/vendor/uplot/"+r[1], nil))
		sum := sha256.Sum256(rec.Body.Bytes())
		if rec.Code != http.StatusOK || hex.EncodeToString(sum[:]) != r[2] {
			t.Errorf("%s: status %d, sha256 %x; README pins %s", r[1], rec.Code, sum, r[2])
		}
	}
}

// The page loads only its own files: every script and stylesheet it
// names is served, none from elsewhere.
func TestIndexLoadsOnlyItsOwnFiles(t *testing.T) {
	ui := web.Handler()
	rec := httptest.NewRecorder()
	ui.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	refs := regexp.MustCompile(`(?:src|href)="([^"#]+)"`).FindAllStringSubmatch(rec.Body.String(), -1)
	if len(refs) < 5 {
		t.Fatalf("index.html names %d files", len(refs))
	}
	for _, r := range refs {
		p := r[1]
		if strings.HasPrefix(p, "data:") {
			continue
		}
		if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") {
			t.Errorf("index.html loads %q: not one of its own files", p)
			continue
		}
		if !ui.Has(p) {
			t.Errorf("index.html loads %s, which the UI does not have", p)
		}
	}
}

// TestGoTemplateIsInit's: the UI's Go template writes the files `nimbus
// init --runtime go` writes (the same module, the same pinned
// aws-lambda-go, the same handler), read from app.js by node.
func TestGoTemplateIsInits(t *testing.T) {
	in, _ := runtime.FindInterpreters(t.Context(), os.LookupEnv)
	node := in.Path(runtime.NodeJS)
	if node == "" {
		testenv.Require(t, "node", errors.New("no node found"))
	}
	app, err := fs.ReadFile(web.Static(), "static/app.js")
	if err != nil {
		t.Fatal(err)
	}
	src := string(app)
	start, end := strings.Index(src, "const templates = {"), strings.Index(src, "// ---------- create / edit")
	if start < 0 || end < start {
		t.Fatal("no templates in app.js")
	}
	script := src[start:end] + `process.stdout.write(JSON.stringify(templates["go-hello"]));`
	out, err := exec.Command(node, "-e", script).Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var tpl struct {
		Runtime string            `json:"runtime"`
		Files   map[string]string `json:"files"`
	}
	if err := json.Unmarshal(out, &tpl); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if want := cli.TemplateFiles(runtime.Provided); tpl.Runtime != runtime.Provided || !maps.Equal(tpl.Files, want) {
		t.Errorf("the UI's Go template: runtime %q files %q\nwant %q files %q", tpl.Runtime, tpl.Files, runtime.Provided, want)
	}
}
