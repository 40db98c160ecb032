package driver_test

import (
	"context"
	"encoding/json"
	"io"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// scriptedWorker is the worker end of a Conn: each request read is handed
// to the test, which writes the frames it wants.
type scriptedWorker struct {
	conn *driver.Conn
	reqs chan runtime.Request
	out  *io.PipeWriter
}

func newScriptedWorker(t *testing.T, logLimit int) *scriptedWorker {
	t.Helper()
	reqR, reqW := io.Pipe()
	respR, respW := io.Pipe()
	t.Cleanup(func() { reqW.Close(); respW.Close(); reqR.Close(); respR.Close() })
	w := &scriptedWorker{reqs: make(chan runtime.Request, 16), out: respW}
	w.conn = driver.NewConn(respR, reqW, nil)
	go func() {
		for {
			b, err := runtime.ReadFrame(reqR, 1<<20)
			if err != nil {
				return
			}
			var req runtime.Request
			if err := json.Unmarshal(b, &req); err != nil {
				return
			}
			if req.Type == runtime.TypeInit {
				runtime.WriteFrame(respW, &runtime.Response{Type: runtime.TypeReady})
				continue
			}
			w.reqs <- req
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := w.conn.Init(ctx, runtime.Init{Handler: "main.handler", LogLimit: logLimit}); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *scriptedWorker) send(t *testing.T, r *runtime.Response) {
	t.Helper()
	if err := runtime.WriteFrame(w.out, r); err != nil {
		t.Error(err)
	}
}

// sink collects what a LogFunc is given.
type sink struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (s *sink) add(data string) { s.mu.Lock(); s.buf.WriteString(data); s.mu.Unlock() }
func (s *sink) String() string  { s.mu.Lock(); defer s.mu.Unlock(); return s.buf.String() }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type invokeResult struct {
	resp *runtime.Response
	err  error
}

func invokeAsync(ctx context.Context, c *driver.Conn, id string) <-chan invokeResult {
	done := make(chan invokeResult, 1)
	go func() {
		resp, err := c.Invoke(ctx, driver.NewRequest(id, json.RawMessage(`{}`), 0))
		done <- invokeResult{resp, err}
	}()
	return done
}

// A call followed with WithLogs asks the worker to stream, and its log
// frames reach the LogFunc while the call is still in flight.
func TestConnPassesLogFramesOfACallInFlight(t *testing.T) {
	w := newScriptedWorker(t, 0)
	var got sink
	done := invokeAsync(driver.WithLogs(context.Background(), got.add), w.conn, "r1")
	req := <-w.reqs
	if !req.StreamLogs {
		t.Fatal("the request does not ask for streamed logs")
	}
	w.send(t, &runtime.Response{Type: runtime.TypeLog, ID: "r1", Data: "first\n"})
	waitFor(t, "the first line", func() bool { return got.String() == "first\n" })
	select {
	case r := <-done:
		t.Fatalf("the call ended before its result was sent: %+v", r)
	default:
	}
	w.send(t, &runtime.Response{Type: runtime.TypeLog, ID: "r1", Data: "second\n"})
	w.send(t, &runtime.Response{Type: runtime.TypeResult, ID: "r1", Result: json.RawMessage(`1`), Logs: "first\nsecond\n"})
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got.String() != "first\nsecond\n" || r.resp.Logs != "first\nsecond\n" {
		t.Fatalf("streamed %q, result logs %q", got.String(), r.resp.Logs)
	}
}

// Log frames nobody asked for (a call not followed, a call not in flight)
// are dropped: they neither break the stream nor reach anyone.
func TestConnDropsLogFramesNobodyFollows(t *testing.T) {
	w := newScriptedWorker(t, 0)
	done := invokeAsync(context.Background(), w.conn, "r1")
	if req := <-w.reqs; req.StreamLogs {
		t.Fatal("a call not followed asks for streamed logs")
	}
	w.send(t, &runtime.Response{Type: runtime.TypeLog, ID: "r1", Data: "unasked\n"})
	w.send(t, &runtime.Response{Type: runtime.TypeLog, ID: "nobody", Data: "stray\n"})
	w.send(t, &runtime.Response{Type: runtime.TypeResult, ID: "r1", Result: json.RawMessage(`1`)})
	if r := <-done; r.err != nil {
		t.Fatal(r.err)
	}
	if err := w.conn.Err(); err != nil {
		t.Fatalf("stream broken: %v", err)
	}
	if n := w.conn.LogsDropped(); n != uint64(len("unasked\nstray\n")) {
		t.Fatalf("LogsDropped = %d", n)
	}
}

// A worker flooding log frames gets no more than the log limit per call
// passed on; the rest is dropped and counted, and the connection goes on
// serving calls, followed or not.
func TestConnCapsAFloodOfLogFrames(t *testing.T) {
	const limit = 4 << 10
	w := newScriptedWorker(t, limit)
	var got sink
	done := invokeAsync(driver.WithLogs(context.Background(), got.add), w.conn, "flood")
	<-w.reqs
	line := strings.Repeat("x", 1023) + "\n"
	const frames = 2000 // 2 MB through a 4 KiB budget
	for range frames {
		w.send(t, &runtime.Response{Type: runtime.TypeLog, ID: "flood", Data: line})
	}
	w.send(t, &runtime.Response{Type: runtime.TypeResult, ID: "flood", Result: json.RawMessage(`1`)})
	if r := <-done; r.err != nil {
		t.Fatal(r.err)
	}
	s := got.String()
	if kept := strings.Count(s, "x"); kept != limit-limit/1024 {
		t.Fatalf("%d bytes of output passed on, want the %d-byte limit", kept, limit)
	}
	if !strings.Contains(s, "live logs truncated at 4096 bytes") {
		t.Fatalf("no truncation marker in %q", s[len(s)-100:])
	}
	if want := uint64(frames*len(line) - limit); w.conn.LogsDropped() != want {
		t.Fatalf("LogsDropped = %d, want %d", w.conn.LogsDropped(), want)
	}

	// The next call on the same worker is served as usual, and a new
	// budget is its own.
	var next sink
	done = invokeAsync(driver.WithLogs(context.Background(), next.add), w.conn, "next")
	<-w.reqs
	w.send(t, &runtime.Response{Type: runtime.TypeLog, ID: "next", Data: "ok\n"})
	w.send(t, &runtime.Response{Type: runtime.TypeResult, ID: "next", Result: json.RawMessage(`2`)})
	if r := <-done; r.err != nil || string(r.resp.Result) != "2" {
		t.Fatalf("next call: %+v", r)
	}
	if next.String() != "ok\n" {
		t.Fatalf("next call streamed %q", next.String())
	}
}

// A flood of large log frames leaves the server's heap where it was: what
// is over the call's limit is read and dropped, never kept. Another
// worker's calls go on meanwhile.
func TestConnLogFloodHoldsNoMemory(t *testing.T) {
	flooded := newScriptedWorker(t, 0)
	other := newScriptedWorker(t, 0)
	var got sink
	done := invokeAsync(driver.WithLogs(context.Background(), got.add), flooded.conn, "flood")
	<-flooded.reqs

	var before, after goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&before)
	big := strings.Repeat("y", 1<<20)
	const frames = 32 // 32 MiB through a 64 KiB budget
	flooding := make(chan struct{})
	go func() {
		defer close(flooding)
		for range frames {
			flooded.send(t, &runtime.Response{Type: runtime.TypeLog, ID: "flood", Data: big})
		}
	}()
	// The other worker's call is served while the flood goes on.
	otherDone := invokeAsync(context.Background(), other.conn, "other")
	<-other.reqs
	other.send(t, &runtime.Response{Type: runtime.TypeResult, ID: "other", Result: json.RawMessage(`1`)})
	if r := <-otherDone; r.err != nil {
		t.Fatal(r.err)
	}
	<-flooding
	flooded.send(t, &runtime.Response{Type: runtime.TypeResult, ID: "flood", Result: json.RawMessage(`1`)})
	if r := <-done; r.err != nil {
		t.Fatal(r.err)
	}
	goruntime.GC()
	goruntime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 16<<20 {
		t.Fatalf("the heap grew by %d MiB over a %d MiB flood", grew>>20, frames)
	}
	if n := strings.Index(got.String(), "\n[nimbus: live logs truncated"); n != runtime.DefaultLogLimit {
		t.Fatalf("%d bytes passed on before the note, want the %d-byte limit", n, runtime.DefaultLogLimit)
	}
}
