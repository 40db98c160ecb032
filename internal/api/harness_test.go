package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/api"
	"github.com/nimbusfaas/nimbus/internal/auth"
	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/engine"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/functions"
	"github.com/nimbusfaas/nimbus/internal/metrics"
	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/store/sqlite"
)

// These tests run the real API, engine, metrics and SQLite store over HTTP,
// with a fake driver whose instances do what each event says, so that what
// the metrics should report is known exactly.

// fakeDriver starts fakeInstances after startDelay, or fails with startErr.
type fakeDriver struct {
	startDelay time.Duration
	startErr   error
}

func (d *fakeDriver) Name() string                    { return fn.DefaultDriver }
func (d *fakeDriver) Available(context.Context) error { return nil }
func (d *fakeDriver) Start(ctx context.Context, spec driver.InstanceSpec) (driver.Instance, error) {
	time.Sleep(d.startDelay)
	if d.startErr != nil {
		return nil, d.startErr
	}
	return &fakeInstance{done: make(chan struct{}), answer: spec.Function.Env["ANSWER"], fail: spec.Function.Env["FAIL"] == "1"}, nil
}

// fakeEvent is what a fake instance does with a call.
type fakeEvent struct {
	SleepMs int    `json:"sleepMs"`
	Error   string `json:"error"`  // an error of this type
	MemKiB  int64  `json:"memKiB"` // the peak memory to report
	// Result is what to return ("ok" when absent).
	Result json.RawMessage `json:"result,omitempty"`
	// Hold names a channel of holds to wait for after SleepMs.
	Hold string `json:"hold,omitempty"`
	// Answer returns the ANSWER variable of the function the instance
	// was started for: which version it runs.
	Answer bool `json:"answer,omitempty"`
	// Print is output the call prints before it sleeps and holds:
	// streamed when the engine asks for it, in the result's logs always.
	Print []string `json:"print,omitempty"`
}

type fakeInstance struct {
	once   sync.Once
	done   chan struct{}
	answer string // the function's ANSWER variable
	fail   bool   // FAIL=1: every call fails
}

// holds are channels a call waits on (fakeEvent.Hold) until a test closes
// them: a call that keeps its instance busy without any timing.
var holds sync.Map // name → chan struct{}

func (i *fakeInstance) Invoke(ctx context.Context, req *runtime.Request) (*runtime.Response, error) {
	var ev fakeEvent
	result := json.RawMessage(`"ok"`)
	// A function URL's event carries the instructions in its x-fake
	// header; without them the fake returns the event it got.
	var urlEvent struct {
		Version string            `json:"version"`
		Headers map[string]string `json:"headers"`
	}
	if json.Unmarshal(req.Event, &urlEvent) == nil && urlEvent.Version == "2.0" {
		if x := urlEvent.Headers["x-fake"]; x != "" {
			_ = json.Unmarshal([]byte(x), &ev)
		} else {
			result = req.Event
		}
	} else {
		_ = json.Unmarshal(req.Event, &ev)
	}
	if ev.Result != nil {
		result = ev.Result
	}
	if ev.Answer {
		result, _ = json.Marshal(i.answer)
	}
	if i.fail {
		ev.Error = "Boom"
	}
	var logs string
	for _, p := range ev.Print {
		if f := driver.LogsOf(ctx); f != nil {
			f(p)
		}
		logs += p
	}
	var hold <-chan struct{}
	if ev.Hold != "" {
		c, _ := holds.Load(ev.Hold)
		hold = c.(chan struct{})
	}
	select {
	case <-time.After(time.Duration(ev.SleepMs) * time.Millisecond):
	case <-ctx.Done():
		i.Kill("timeout")
		return nil, ctx.Err()
	}
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			i.Kill("timeout")
			return nil, ctx.Err()
		}
	}
	resp := &runtime.Response{Type: runtime.TypeResult, ID: req.ID, Result: result, MaxRSSKiB: ev.MemKiB, Logs: logs}
	if ev.Error != "" {
		resp.Result, resp.Error = nil, &runtime.Error{Type: ev.Error, Message: "failed"}
	}
	return resp, nil
}
func (i *fakeInstance) Stats() driver.Stats { return driver.Stats{RSSKiB: 1234} }
func (i *fakeInstance) Kill(string) error {
	i.once.Do(func() { close(i.done) })
	return nil
}
func (i *fakeInstance) Done() <-chan struct{} { return i.done }
func (i *fakeInstance) Exit() driver.ExitInfo { return driver.ExitInfo{} }

// harness is a running API.
type harness struct {
	t       testing.TB
	srv     *httptest.Server
	api     *api.Server
	metrics *metrics.Recorder
	engine  *engine.Engine
	fns     *functions.Service
	store   *sqlite.Store
	key     string
}

type options struct {
	key          string
	startDelay   time.Duration
	startErr     error
	queueTimeout time.Duration
	api          func(*api.Config)
	server       func(*httptest.Server) // before it starts
	drivers      []string               // more fake drivers, by name, beside the default
}

func newHarness(t testing.TB, o options) *harness {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "nimbus.db"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := metrics.NewRegistry()
	rec := metrics.New(metrics.Config{Registry: reg, Logger: log})
	drivers := map[string]driver.Driver{fn.DefaultDriver: &fakeDriver{startDelay: o.startDelay, startErr: o.startErr}}
	for _, name := range o.drivers {
		drivers[name] = &fakeDriver{startDelay: o.startDelay}
	}
	eng := engine.New(engine.Config{
		Drivers:       drivers,
		Records:       st,
		Metrics:       rec,
		Logger:        log,
		QueueTimeout:  o.queueTimeout,
		FlushInterval: 10 * time.Millisecond,
	})
	if err := metrics.RegisterEngine(reg, eng); err != nil {
		t.Fatal(err)
	}
	eng.Start(ctx)
	dir := t.TempDir()
	audit := auth.NewAudit(st, log)
	fns := functions.New(functions.Config{Store: st, Engine: eng, Logger: log, Defaults: fn.Defaults{TimeoutMs: 5000, MemoryMB: 128},
		CodeDir: filepath.Join(dir, "code"), LayerDir: filepath.Join(dir, "layers"), Events: rec.Events(), Audit: audit})
	cfg := api.Config{Store: st, Engine: eng, Functions: fns, Metrics: rec, APIKey: o.key, Logger: log, Gatherer: reg, Audit: audit}
	if o.api != nil {
		o.api(&cfg)
	}
	a := api.New(cfg)
	srv := httptest.NewUnstartedServer(a)
	if o.server != nil {
		o.server(srv)
	}
	srv.Config.RegisterOnShutdown(a.CloseStreams)
	srv.Start()
	h := &harness{t: t, srv: srv, api: a, metrics: rec, engine: eng, fns: fns, store: st, key: o.key}
	t.Cleanup(func() {
		a.CloseStreams()
		srv.Close()
		if err := eng.Close(ctx); err != nil {
			t.Errorf("engine close: %v", err)
		}
		st.Close()
	})
	return h
}

// do sends a request with the API key and decodes a JSON reply into out.
func (h *harness) do(method, path string, body any, out any) int {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if h.key != "" {
		req.Header.Set("Authorization", "Bearer "+h.key)
	}
	if method != "GET" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("%s %s: read: %v", method, path, err)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			h.t.Fatalf("%s %s: %d %.300q: %v", method, path, resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode
}

type function struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Runtime      string `json:"runtime"`
	Code         string `json:"code"`
	MaxInstances int    `json:"maxInstances,omitempty"`
}

func (h *harness) create(name string, maxInstances int) function {
	h.t.Helper()
	var f function
	if st := h.do("POST", "/api/functions", function{Name: name, Runtime: "python", Code: "x = 1\n", MaxInstances: maxInstances}, &f); st != http.StatusCreated {
		h.t.Fatalf("create %s: %d", name, st)
	}
	return f
}

// execution is an execution as the API shows it.
type execution struct {
	ExecutionID    string  `json:"executionId"`
	FunctionID     string  `json:"functionId"`
	Status         string  `json:"status"`
	DurationMs     float64 `json:"durationMs"`
	InitDurationMs float64 `json:"initDurationMs"`
	ColdStart      bool    `json:"coldStart"`
	PeakMemoryKiB  int64   `json:"peakMemoryKiB"`
	Error          *struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

func (h *harness) invoke(name string, ev fakeEvent) execution {
	h.t.Helper()
	var ex execution
	h.do("POST", "/api/executions/"+name, ev, &ex)
	if ex.ExecutionID == "" {
		h.t.Fatalf("invoke %s: no execution", name)
	}
	return ex
}

// history reads a function's whole history through the API, page by page.
func (h *harness) history(name string) []execution {
	h.t.Helper()
	var all []execution
	before := ""
	for {
		var page struct {
			Executions []execution `json:"executions"`
			NextBefore string      `json:"nextBefore"`
		}
		path := "/api/executions/" + name + "/history?limit=100"
		if before != "" {
			path += "&before=" + before
		}
		if st := h.do("GET", path, nil, &page); st != http.StatusOK {
			h.t.Fatalf("history: %d", st)
		}
		all = append(all, page.Executions...)
		if page.NextBefore == "" {
			return all
		}
		before = page.NextBefore
	}
}

var errTimeout = errors.New("timed out")

// eventually polls cond every few milliseconds for up to 20 s.
func eventually(cond func() bool) error {
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return errTimeout
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// signIn opens a UI session with key and returns its cookie.
func (h *harness) signIn(key string) *http.Cookie {
	h.t.Helper()
	req, _ := http.NewRequest("POST", h.srv.URL+"/api/session", strings.NewReader(`{"key":`+strconv.Quote(key)+`}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "nimbus_session" && c.Value != "" {
			return c
		}
	}
	h.t.Fatalf("sign-in with %q: %d and no session cookie", key, resp.StatusCode)
	return nil
}
