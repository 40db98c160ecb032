package functions_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/engine"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/functions"
	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/store/sqlite"
)

// These tests run the service with the real engine and SQLite store, and
// a fake driver whose instances answer with the id and version of the
// function they were started for.

// fakeDriver starts fakeInstances and counts them.
type fakeDriver struct{ started atomic.Int64 }

func (d *fakeDriver) Name() string                    { return fn.DefaultDriver }
func (d *fakeDriver) Available(context.Context) error { return nil }
func (d *fakeDriver) Start(_ context.Context, spec driver.InstanceSpec) (driver.Instance, error) {
	d.started.Add(1)
	return &fakeInstance{f: spec.Function, done: make(chan struct{})}, nil
}

type fakeInstance struct {
	f    *fn.Function
	once sync.Once
	done chan struct{}
}

// ran is what a fake instance answers.
type ran struct {
	ID      string `json:"id"`
	Version int    `json:"version"`
}

func (i *fakeInstance) Invoke(_ context.Context, req *runtime.Request) (*runtime.Response, error) {
	b, _ := json.Marshal(ran{ID: i.f.ID, Version: i.f.Revision})
	return &runtime.Response{Type: runtime.TypeResult, ID: req.ID, Result: b}, nil
}
func (i *fakeInstance) Stats() driver.Stats { return driver.Stats{} }
func (i *fakeInstance) Kill(string) error {
	i.once.Do(func() { close(i.done) })
	return nil
}
func (i *fakeInstance) Done() <-chan struct{} { return i.done }
func (i *fakeInstance) Exit() driver.ExitInfo { return driver.ExitInfo{} }

// node is one server's service, engine and driver over a store.
type node struct {
	t      *testing.T
	svc    *functions.Service
	engine *engine.Engine
	driver *fakeDriver
	store  *sqlite.Store
}

// openStore opens a SQLite store in a temporary directory.
func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "nimbus.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// newNode starts a service over st (a new store when nil).
func newNode(t *testing.T, st *sqlite.Store) *node {
	t.Helper()
	if st == nil {
		st = openStore(t)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	d := &fakeDriver{}
	eng := engine.New(engine.Config{
		Drivers:       map[string]driver.Driver{fn.DefaultDriver: d},
		Records:       st,
		Logger:        log,
		FlushInterval: 10 * time.Millisecond,
	})
	eng.Start(context.Background())
	t.Cleanup(func() {
		if err := eng.Close(context.Background()); err != nil {
			t.Errorf("engine close: %v", err)
		}
	})
	svc := functions.New(functions.Config{
		Store:    st,
		Engine:   eng,
		Defaults: fn.Defaults{TimeoutMs: 5000, MemoryMB: 128},
		Logger:   log,
		TTL:      20 * time.Millisecond,
		CodeDir:  filepath.Join(t.TempDir(), "code"),
		LayerDir: filepath.Join(t.TempDir(), "layers"),
	})
	return &node{t: t, svc: svc, engine: eng, driver: d, store: st}
}

// create creates a function named name with minimal Python code.
func (n *node) create(name string) *fn.Function {
	n.t.Helper()
	f, err := n.svc.Create(n.t.Context(), &fn.Function{Name: name, Runtime: "python", Code: "def handler(e, c):\n    return 1\n"})
	if err != nil {
		n.t.Fatalf("create %s: %v", name, err)
	}
	return f
}

// call resolves idOrName and invokes it, reporting what ran.
func (n *node) call(idOrName string) (ran, error) {
	n.t.Helper()
	f, err := n.svc.Resolve(n.t.Context(), idOrName)
	if err != nil {
		return ran{}, err
	}
	ex, err := n.engine.Invoke(n.t.Context(), f, json.RawMessage(`{}`))
	if err != nil {
		return ran{}, err
	}
	if ex.Status != fn.StatusSuccess {
		return ran{}, fmt.Errorf("call %s: status %s", idOrName, ex.Status)
	}
	var r ran
	err = json.Unmarshal(ex.Result, &r)
	return r, err
}

// eventually polls cond every few milliseconds for up to 20 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
