package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/api"
)

// sse is one Server-Sent Event; a comment has the name ":".
type sse struct{ name, data string }

// stream is a live event stream read by a real HTTP client.
type stream struct {
	t      testing.TB
	resp   *http.Response
	events chan sse
	done   chan struct{} // closed when the stream ended
}

// follow opens GET path (the key in whatever way req says) and reads its
// events in the background.
func (h *harness) follow(path string, prep func(*http.Request)) *stream {
	h.t.Helper()
	req, err := http.NewRequest("GET", h.srv.URL+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	if prep != nil {
		prep(req)
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatalf("GET %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		h.t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		h.t.Errorf("content type %q", ct)
	}
	s := &stream{t: h.t, resp: resp, events: make(chan sse, 10000), done: make(chan struct{})}
	go s.read(resp.Body)
	h.t.Cleanup(func() { resp.Body.Close() })
	return s
}

func (s *stream) read(body io.Reader) {
	defer close(s.done)
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var ev sse
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.name != "" {
				s.events <- ev
			}
			ev = sse{}
		case strings.HasPrefix(line, ":"):
			s.events <- sse{name: ":", data: strings.TrimSpace(line[1:])}
		case strings.HasPrefix(line, "event: "):
			ev.name = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			ev.data += line[len("data: "):]
		}
	}
}

// next returns the next event named name, skipping others, or fails after
// 20 s.
func (s *stream) next(name string) sse {
	s.t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev := <-s.events:
			if ev.name == name {
				return ev
			}
		case <-s.done:
			s.t.Fatalf("the stream ended while waiting for %q", name)
		case <-timeout:
			s.t.Fatalf("no %q event in 20 s", name)
		}
	}
}

// until decodes events named name into v until match(v) holds.
func until[T any](s *stream, name string, match func(T) bool) T {
	s.t.Helper()
	for {
		var v T
		ev := s.next(name)
		if err := json.Unmarshal([]byte(ev.data), &v); err != nil {
			s.t.Fatalf("decode %s event %q: %v", name, ev.data, err)
		}
		if match(v) {
			return v
		}
	}
}

type executionEvent struct {
	ExecutionID string  `json:"executionId"`
	FunctionID  string  `json:"functionId"`
	Function    string  `json:"function"`
	Status      string  `json:"status"`
	DurationMs  float64 `json:"durationMs"`
	ColdStart   bool    `json:"coldStart"`
}

type snapshotEvent struct {
	FunctionID   string            `json:"functionId"`
	Invocations  uint64            `json:"invocations"`
	ByStatus     map[string]uint64 `json:"byStatus"`
	Dropped      uint64            `json:"dropped"`
	DroppedTotal uint64            `json:"droppedTotal"`
	Instances    struct{ Idle int }
	DurationMs   struct{ P50 float64 }
}

func TestEventStream(t *testing.T) {
	h := newHarness(t, options{key: "k3y"})
	h.create("alpha", 1)
	b := h.create("bravo", 1)
	all := h.follow("/api/events?key=k3y", nil)
	session := h.signIn("k3y")
	onlyB := h.follow("/api/events?function=bravo", func(r *http.Request) { r.AddCookie(session) })
	// Both streams are subscribed once their first snapshot arrived.
	all.next("metrics")
	onlyB.next("metrics")

	exA := h.invoke("alpha", fakeEvent{SleepMs: 3})
	exB := h.invoke("bravo", fakeEvent{Error: "ValueError"})

	for _, want := range []execution{exA, exB} {
		got := until(all, "execution", func(e executionEvent) bool { return true })
		if got.ExecutionID != want.ExecutionID || got.FunctionID != want.FunctionID || got.Status != want.Status ||
			got.DurationMs != want.DurationMs || got.ColdStart != want.ColdStart {
			t.Errorf("event %+v, want execution %+v", got, want)
		}
	}
	if got := until(onlyB, "execution", func(e executionEvent) bool { return true }); got.ExecutionID != exB.ExecutionID || got.Function != "bravo" {
		t.Errorf("filtered stream: %+v, want bravo's %s", got, exB.ExecutionID)
	}
	// The next snapshots count them.
	sys := until(all, "metrics", func(s snapshotEvent) bool { return s.Invocations == 2 })
	if sys.ByStatus["error"] != 1 || sys.Instances.Idle != 2 || sys.Dropped != 0 {
		t.Errorf("system snapshot %+v", sys)
	}
	fb := until(onlyB, "metrics", func(s snapshotEvent) bool { return s.Invocations == 1 })
	if fb.FunctionID != b.ID || fb.ByStatus["error"] != 1 {
		t.Errorf("bravo's snapshot %+v", fb)
	}
	select {
	case ev := <-onlyB.events:
		if ev.name == "execution" {
			t.Errorf("the filtered stream has another event: %+v", ev)
		}
	default:
	}
}

func TestEventStreamAuth(t *testing.T) {
	h := newHarness(t, options{key: "k3y"})
	h.create("alpha", 1)
	for _, tc := range []struct {
		name, path string
		prep       func(*http.Request)
		status     int
	}{
		{"no key", "/api/events", nil, 401},
		{"wrong query key", "/api/events?key=nope", nil, 401},
		{"wrong session", "/api/events", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "nimbus_session", Value: "nope"}) }, 401},
		{"the key as a cookie", "/api/events", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "nimbus_key", Value: "k3y"}) }, 401},
		{"header", "/api/events", func(r *http.Request) { r.Header.Set("Authorization", "Bearer k3y") }, 200},
		{"query key elsewhere", "/api/functions?key=k3y", nil, 401},
		{"cookie elsewhere", "/api/functions", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "nimbus_key", Value: "k3y"}) }, 401},
		{"unknown function", "/api/events?key=k3y&function=nope", nil, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", h.srv.URL+tc.path, nil)
			if tc.prep != nil {
				tc.prep(req)
			}
			resp, err := h.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("%d, want %d", resp.StatusCode, tc.status)
			}
		})
	}
}

// TestStalledClientDoesNotSlowInvocations opens a stream and never reads
// it, over socket buffers kept small so that they fill fast, then makes
// many calls: every call must finish (with a blocking publish they would
// wait for the stalled client forever, or for the 60 s write timeout) and
// the stream's lost events must be counted, in Prometheus and in its own
// snapshot once it reads again.
func TestStalledClientDoesNotSlowInvocations(t *testing.T) {
	h := newHarness(t, options{
		api: func(c *api.Config) { c.EventBuffer = 8; c.StreamWriteTimeout = time.Minute },
		server: func(s *httptest.Server) {
			s.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
				if tc, ok := c.(*net.TCPConn); ok {
					tc.SetWriteBuffer(4096)
				}
				return ctx
			}
		},
	})
	h.create("alpha", 1)
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
	conn, err := d.Dial("tcp", h.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /api/events HTTP/1.1\r\nHost: %s\r\n\r\n", h.srv.Listener.Addr())
	// Wait until the stalled stream has subscribed.
	if err := eventually(func() bool { return h.metrics.Events().Subscribers() == 1 }); err != nil {
		t.Fatal("the stalled stream never subscribed")
	}

	const calls = 1500 // about 300 KB of events, far past the buffers
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		for i := range calls {
			var ex execution
			if st := h.do("POST", "/api/executions/alpha", fakeEvent{}, &ex); st != 200 {
				done <- fmt.Errorf("call %d: status %d", i, st)
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(45 * time.Second):
		t.Fatalf("%d calls did not finish in 45 s behind a stalled client", calls)
	}
	t.Logf("%d calls in %v behind a stalled client", calls, time.Since(start))

	dropped := h.metrics.Events().Dropped()
	if dropped == 0 {
		t.Fatal("no events dropped: the client never stalled")
	}
	_, fams := h.scrape("")
	if v := fams["nimbus_events_dropped_total"].GetMetric()[0].GetCounter().GetValue(); v != float64(dropped) {
		t.Errorf("nimbus_events_dropped_total %v, want %d", v, dropped)
	}
	var sys struct{ EventsDropped uint64 }
	h.do("GET", "/api/metrics/system", nil, &sys)
	if sys.EventsDropped != dropped {
		t.Errorf("eventsDropped %d, want %d", sys.EventsDropped, dropped)
	}

	// Reading again, the client learns what it missed.
	s := &stream{t: t, events: make(chan sse, 100000), done: make(chan struct{})}
	go s.read(conn)
	// (Snapshots written before it stalled may count fewer.)
	snap := until(s, "metrics", func(s snapshotEvent) bool { return s.Dropped == dropped })
	if snap.DroppedTotal != dropped {
		t.Errorf("snapshot says %d dropped in all streams, want %d", snap.DroppedTotal, dropped)
	}
}

func TestHeartbeatAndShutdown(t *testing.T) {
	h := newHarness(t, options{api: func(c *api.Config) {
		c.SnapshotInterval = time.Hour
		c.HeartbeatInterval = 20 * time.Millisecond
	}})
	s := h.follow("/api/events", nil)
	s.next("metrics") // the first snapshot comes at once
	if hb := s.next(":"); hb.data != "heartbeat" {
		t.Errorf("comment %q, want heartbeat", hb.data)
	}

	// A graceful shutdown ends the stream instead of waiting for it.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.srv.Config.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a stream open: %v", err)
	}
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		t.Fatal("the stream outlived the shutdown")
	}
}
