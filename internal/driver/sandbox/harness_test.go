package sandbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/driver/sandbox"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/testenv"
)

// harness holds what every driver of a test shares: the host's real
// interpreters and the installed shims.
type harness struct {
	interp runtime.Interpreters
	shims  runtime.Shims
	dir    string
}

var (
	interpOnce sync.Once
	interp     runtime.Interpreters
)

func newHarness(tb testing.TB) *harness {
	tb.Helper()
	testenv.RequireRoot(tb)
	interpOnce.Do(func() { interp, _ = runtime.FindInterpreters(context.Background(), os.LookupEnv) })
	if interp.Path(runtime.Python) == "" || interp.Path(runtime.NodeJS) == "" {
		testenv.Require(tb, "python3 and node", fmt.Errorf("found %+v", interp))
	}
	dir := tb.TempDir()
	shims, err := runtime.InstallShims(dir + "/runtime")
	if err != nil {
		tb.Fatal(err)
	}
	return &harness{interp: interp, shims: shims, dir: dir}
}

// driver opens a sandbox driver with the settings in env, closed when the
// test ends.
func (h *harness) driver(tb testing.TB, env map[string]string) *sandbox.Driver {
	tb.Helper()
	log := slog.New(slog.NewTextHandler(&testWriter{tb: tb}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	d, err := sandbox.New(driver.Config{
		DataDir:      tb.TempDir(),
		Lookup:       func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Logger:       log,
		Interpreters: h.interp,
		Shims:        h.shims,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() }) // its spare sandboxes and spare workers
	return d
}

// function is a function of runtime rt with one source file.
func (h *harness) function(rt, name, code string) *fn.Function {
	f := &fn.Function{ID: fn.NewID(), Name: name, Runtime: rt, Revision: 1, Memory: 128, Timeout: 5000, MaxInstances: 1}
	r, _ := runtime.Lookup(rt)
	f.Handler = r.DefaultHandler
	f.Files = map[string]string{f.ModuleFile(): code}
	return f
}

var okCode = map[string]string{
	runtime.Python: "def handler(e, c):\n    return {'ok': e.get('n', 0) + 1}\n",
	runtime.NodeJS: "exports.handler = async (e) => ({ ok: (e.n || 0) + 1 });\n",
}

// invoke calls inst once with event and a deadline of timeout.
func invoke(inst driver.Instance, event any, timeout time.Duration) (*runtime.Response, error) {
	b, _ := json.Marshal(event)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	dl, _ := ctx.Deadline()
	return inst.Invoke(ctx, driver.NewRequest(fn.NewID(), b, dl.UnixMilli()))
}

type testWriter struct{ tb testing.TB }

func (w *testWriter) Write(b []byte) (int, error) {
	w.tb.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}
