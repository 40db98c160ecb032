package engine_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/driver/sandbox"
	"github.com/nimbusfaas/nimbus/internal/engine"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/store/sqlite"
	"github.com/nimbusfaas/nimbus/internal/testenv"
)

// fakeSecrets is a SecretSource of fixed values; it counts reveals.
type fakeSecrets struct {
	mu      sync.Mutex
	values  map[string]string
	reveals int
}

func (s *fakeSecrets) Reveal(_ context.Context, name string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reveals++
	v, ok := s.values[name]
	if !ok {
		return "", fmt.Errorf("test secrets: %q: %w", name, fn.ErrNotFound)
	}
	return v, nil
}

// logBuffer collects the engine's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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

// A real worker gets a referenced secret's value in its environment, and
// the value is in nothing the server keeps or shows: the stored record,
// the function's JSON, the logs.
func TestSecretReachesTheWorkerOnly(t *testing.T) {
	testenv.RequireRoot(t)
	ctx := context.Background()
	interp, _ := runtime.FindInterpreters(ctx, os.LookupEnv)
	if interp.Path(runtime.Python) == "" {
		testenv.Require(t, "python3", errors.New("not found"))
	}
	dir := t.TempDir()
	shims, err := runtime.InstallShims(filepath.Join(dir, "runtime"))
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d, err := sandbox.New(driver.Config{DataDir: filepath.Join(dir, "data"), Lookup: func(string) (string, bool) { return "", false },
		Logger: log, Interpreters: interp, Shims: shims})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	st, err := sqlite.Open(ctx, filepath.Join(dir, "nimbus.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })

	value := "hunter2-" + rand.Text()
	secrets := &fakeSecrets{values: map[string]string{"db": value}}
	e := engine.New(engine.Config{Drivers: map[string]driver.Driver{fn.DefaultDriver: d}, Records: st, Logger: log, Secrets: secrets})
	e.Start(ctx)
	t.Cleanup(func() { e.Close(context.WithoutCancel(ctx)) })

	f := &fn.Function{Name: "db", Runtime: "python", Code: "import os\ndef handler(e, c):\n    print('started')\n    return os.environ.get('DB_PASSWORD')\n",
		SecretEnv: map[string]string{"DB_PASSWORD": "db"}}
	if err := f.Normalize(fn.Defaults{TimeoutMs: 10000, MemoryMB: 128}); err != nil {
		t.Fatal(err)
	}
	f.ID, f.Revision = fn.NewID(), 1
	if err := st.CreateFunction(ctx, f); err != nil {
		t.Fatal(err)
	}

	ex, err := e.Invoke(ctx, f, json.RawMessage(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if ex.Status != fn.StatusSuccess || string(ex.Result) != fmt.Sprintf("%q", value) {
		t.Fatalf("status %s result %s error %+v, want the secret's value", ex.Status, ex.Result, ex.Error)
	}
	if f.Secrets != nil {
		t.Fatal("the engine filled the caller's function with secrets")
	}

	// A function that references a secret that does not exist cannot
	// start, and says why.
	g := *f
	g.ID, g.Name, g.SecretEnv = fn.NewID(), "missing", map[string]string{"DB_PASSWORD": "db-password"}
	if err := st.CreateFunction(ctx, &g); err != nil {
		t.Fatal(err)
	}
	miss, err := e.Invoke(ctx, &g, json.RawMessage(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if miss.Status != fn.StatusCrashed || miss.Error == nil || !strings.Contains(miss.Error.Message, `secret "db-password" (for DB_PASSWORD) does not exist`) {
		t.Fatalf("status %s error %+v, want a start refused for the missing secret", miss.Status, miss.Error)
	}

	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, x := range []*fn.Execution{ex, miss} {
		got, err := st.GetExecution(ctx, x.FunctionID, x.ID)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(got)
		kept = append(kept, string(b))
	}
	if !strings.Contains(kept[0], value) {
		// The handler returned it: the result is the one place it may be.
		t.Fatalf("stored record %s lacks the result", kept[0])
	}
	for _, x := range []*fn.Function{f, &g} {
		stored, err := st.GetFunction(ctx, x.ID)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(stored)
		kept = append(kept, string(b))
		if !strings.Contains(string(b), `"DB_PASSWORD":{"secret":`) {
			t.Errorf("stored function %s lost its reference", b)
		}
	}
	kept = append(kept[1:], logs.String())
	for _, s := range kept {
		if strings.Contains(s, value) {
			t.Errorf("the secret's value is in %s", s)
		}
	}

	// Without a secret store, such a function cannot start either.
	e2 := engine.New(engine.Config{Drivers: map[string]driver.Driver{fn.DefaultDriver: d}, Records: nopRecords{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	e2.Start(ctx)
	t.Cleanup(func() { e2.Close(context.WithoutCancel(ctx)) })
	none, err := e2.Invoke(ctx, f, json.RawMessage(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if none.Status == fn.StatusSuccess || !strings.Contains(none.Error.Message, "no secret store") {
		t.Fatalf("status %s error %+v, want a start refused for want of a secret store", none.Status, none.Error)
	}
}

type nopRecords struct{}

func (nopRecords) InsertExecutions(context.Context, []*fn.Execution) error     { return nil }
func (nopRecords) PruneExecutions(context.Context, string, int) (int64, error) { return 0, nil }
