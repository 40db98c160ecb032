package deps_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/build/deps"
	"github.com/nimbusfaas/nimbus/internal/build/deps/depstest"
	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/testenv"
)

// TestMain removes the fixtures the tests share.
func TestMain(m *testing.M) {
	code := m.Run()
	depstest.Cleanup()
	os.Exit(code)
}

// sharedDir is a directory the build user can read, kept until the tests
// end.
func sharedDir(tb testing.TB) string { return depstest.SharedDir(tb) }

var (
	interpOnce sync.Once
	interp     runtime.Interpreters
)

// interpreters are the host's, as the server finds them.
func interpreters(tb testing.TB, rt string) runtime.Interpreters {
	tb.Helper()
	interpOnce.Do(func() { interp, _ = runtime.FindInterpreters(context.Background(), os.LookupEnv) })
	if interp.Path(rt) == "" {
		testenv.Require(tb, rt, fmt.Errorf("no %s interpreter found", rt))
	}
	return interp
}

// newBuilder is a Builder of the host's interpreters with layers in a
// fresh directory; set adjusts its Config.
func newBuilder(tb testing.TB, rt string, set func(*deps.Config)) *deps.Builder {
	tb.Helper()
	cfg := deps.Config{Dir: filepath.Join(tb.TempDir(), "layers"), Interpreters: interpreters(tb, rt), Timeout: time.Minute}
	if set != nil {
		set(&cfg)
	}
	b, err := deps.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// srcDir writes a function's code.
func srcDir(tb testing.TB, files map[string]string) string {
	tb.Helper()
	d := tb.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(d, name), []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return d
}

// plan plans the code files for rt, which must declare dependencies.
func plan(tb testing.TB, b *deps.Builder, rt string, files map[string]string, scripts bool) *deps.Plan {
	tb.Helper()
	p, ok, err := b.Plan(rt, srcDir(tb, files), scripts)
	if err != nil || !ok {
		tb.Fatalf("Plan: %v, %v; want a plan", ok, err)
	}
	return p
}

// logBuffer collects a build's log; safe to read while it is written.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// run runs a command and returns its trimmed output.
func run(tb testing.TB, env []string, name string, args ...string) string {
	tb.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// demoWheels returns the directory of nimbusdemo's wheel.
func demoWheels(tb testing.TB) string { return depstest.Wheels(tb) }

// demoWheel is the path of nimbusdemo's wheel.
func demoWheel(tb testing.TB) string { return depstest.Wheel(tb) }

// pythonImports runs python with the layer on its path and returns what
// nimbusdemo.answer() returns.
func pythonAnswer(tb testing.TB, python, layer string) string {
	tb.Helper()
	return run(tb, []string{"PYTHONPATH=" + filepath.Join(layer, "python")}, python, "-c",
		"import nimbusdemo; print(nimbusdemo.answer())")
}

type (
	npmPackage = depstest.Package
	registry   = depstest.Registry
)

// answerPackage returns nimbus-answer 1.0.0, whose answer() is 42.
func answerPackage(tb testing.TB) *npmPackage {
	tb.Helper()
	return depstest.AnswerPackage(tb, interpreters(tb, runtime.NodeJS).Path(runtime.NodeJS))
}

func newRegistry(tb testing.TB, pkg *npmPackage) *registry { return depstest.NewRegistry(tb, pkg) }

// functionPackage is a function's package.json depending on
// nimbus-answer, with extra fields.
func functionPackage(extra string) string {
	return `{"name": "fn", "version": "1.0.0", "private": true, ` + extra + `"dependencies": {"nimbus-answer": "^1.0.0"}}`
}

// nodeAnswer runs node with the layer's modules on its path and returns
// what nimbus-answer's answer() returns.
func nodeAnswer(tb testing.TB, node, layer string) string {
	tb.Helper()
	return run(tb, []string{"NODE_PATH=" + filepath.Join(layer, "nodejs", "node_modules")}, node, "-e",
		"process.stdout.write(String(require('nimbus-answer').answer()))")
}

// buildErr asserts err is a *deps.BuildError.
func buildErr(tb testing.TB, err error) *deps.BuildError {
	tb.Helper()
	var be *deps.BuildError
	if !errors.As(err, &be) {
		tb.Fatalf("error %v (%T), want a *deps.BuildError", err, err)
	}
	return be
}

// simpleIndex is a PEP 503 simple index on loopback serving one wheel.
type simpleIndex struct {
	*httptest.Server
	wheels atomic.Int64
}

func newSimpleIndex(tb testing.TB, wheel string) *simpleIndex {
	tb.Helper()
	data, err := os.ReadFile(wheel)
	if err != nil {
		tb.Fatal(err)
	}
	name := filepath.Base(wheel)
	sum := sha256.Sum256(data)
	idx := &simpleIndex{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /simple/nimbusdemo/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "<!DOCTYPE html><html><body><a href=\"/files/%s#sha256=%s\">%s</a></body></html>\n", name, hex.EncodeToString(sum[:]), name)
	})
	mux.HandleFunc("GET /files/"+name, func(w http.ResponseWriter, r *http.Request) {
		idx.wheels.Add(1)
		w.Write(data)
	})
	idx.Server = httptest.NewServer(mux)
	tb.Cleanup(idx.Close)
	return idx
}
