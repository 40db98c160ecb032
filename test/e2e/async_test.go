package e2e_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// A Python function for async tests: it sleeps event["sleep"] seconds,
// fails while its FAIL variable is "1", and answers its event.
const asyncPy = `import os, time
def handler(event, context):
    time.sleep(event.get("sleep", 0))
    if os.environ.get("FAIL") == "1":
        raise ValueError("failing on purpose")
    return {"got": event}
`

// asyncFunction is a function with async settings.
type asyncFunction struct {
	Name         string            `json:"name"`
	Runtime      string            `json:"runtime"`
	Code         string            `json:"code"`
	Env          map[string]string `json:"env,omitempty"`
	MaxInstances int               `json:"maxInstances,omitempty"`
	Async        map[string]any    `json:"async,omitempty"`
}

type acceptedCall struct {
	ExecutionID string `json:"executionId"`
	Duplicate   bool   `json:"duplicate"`
	Status      string `json:"status"`
}

type asyncRecord struct {
	execution
	Trigger string `json:"trigger"`
	Attempt int    `json:"attempt"`
}

type deadLetter struct {
	ExecutionID string          `json:"executionId"`
	Reason      string          `json:"reason"`
	Attempts    int             `json:"attempts"`
	AcceptedAt  time.Time       `json:"acceptedAt"`
	DeadAt      time.Time       `json:"deadAt"`
	Event       json.RawMessage `json:"event"`
	Error       *struct{ Type, Message string }
}

// enqueue sends an async call with the given headers and answers what
// the server said.
func (n *nimbus) enqueue(name string, event any, headers ...string) (acceptedCall, *http.Response) {
	n.t.Helper()
	body, _ := json.Marshal(event)
	req, _ := http.NewRequest("POST", n.url+"/api/executions/"+name, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if len(headers) == 0 {
		headers = []string{"X-Nimbus-Invocation-Type", "Event"}
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if n.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+n.apiKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	var a acceptedCall
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		n.t.Fatalf("async call to %s: %d %s", name, resp.StatusCode, data)
	}
	if err := json.Unmarshal(data, &a); err != nil {
		n.t.Fatal(err)
	}
	return a, resp
}

// record reads one execution record (404: nil).
func (n *nimbus) record(function, id string) *asyncRecord {
	n.t.Helper()
	var r asyncRecord
	switch st := n.do("GET", "/api/executions/"+function+"/"+id, nil, &r); st {
	case http.StatusOK:
		return &r
	case http.StatusNotFound:
		return nil
	default:
		n.t.Fatalf("GET execution %s: %d", id, st)
		return nil
	}
}

// final waits until the call has a final status and returns its record.
func (n *nimbus) final(function, id string, within time.Duration) *asyncRecord {
	n.t.Helper()
	var r *asyncRecord
	eventually(n.t, within, "call "+id+" never reached a final status", func() bool {
		r = n.record(function, id)
		return r != nil && r.Status != "queued" && r.Status != "running"
	})
	return r
}

// destinations collects what is POSTed to a loopback URL.
type destinations struct {
	mu      sync.Mutex
	records []map[string]any
}

func (d *destinations) serve(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rec map[string]any
		if err := json.NewDecoder(r.Body).Decode(&rec); err != nil {
			t.Errorf("destination record: %v", err)
		}
		d.mu.Lock()
		d.records = append(d.records, rec)
		d.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/hook"
}

func (d *destinations) all() []map[string]any {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]map[string]any(nil), d.records...)
}

// eventStream follows /api/events, sending each execution event.
func (n *nimbus) eventStream(function string) <-chan map[string]any {
	n.t.Helper()
	resp, err := http.Get(n.url + "/api/events?function=" + function)
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { resp.Body.Close() })
	out := make(chan map[string]any, 1000)
	subscribed := make(chan struct{})
	go func() {
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var name string
		first := true
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				name = v
			} else if v, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				if first {
					first = false
					close(subscribed)
				}
				if name == "execution" {
					var ev map[string]any
					json.Unmarshal([]byte(v), &ev)
					out <- ev
				}
			}
		}
	}()
	select {
	case <-subscribed:
	case <-time.After(20 * time.Second):
		n.t.Fatal("no event from /api/events in 20 s")
	}
	return out
}

// TestAsyncCallQueuedRunningDone: 202 at once with the execution id;
// the record and the live events go queued → running → success; a call
// beyond the function's capacity waits in the queue (never 429).
func TestAsyncCallQueuedRunningDone(t *testing.T) {
	n := start(t)
	n.create(function{Name: "slow", Runtime: "python", Code: asyncPy, MaxInstances: 1})
	events := n.eventStream("slow")

	first, resp := n.enqueue("slow", map[string]any{"sleep": 3})
	if first.Status != "queued" || len(first.ExecutionID) != 24 || first.Duplicate {
		t.Fatalf("202 body %+v", first)
	}
	if loc := resp.Header.Get("Location"); !strings.HasSuffix(loc, "/"+first.ExecutionID) {
		t.Errorf("Location %q", loc)
	}
	// Lambda's header and ?async=true say the same.
	second, _ := n.enqueue("slow", map[string]any{"n": 2}, "X-Amz-Invocation-Type", "Event")
	var third acceptedCall
	if st := n.do("POST", "/api/executions/slow?async=true", map[string]any{"n": 3}, &third); st != http.StatusAccepted || third.ExecutionID == "" {
		t.Fatalf("?async=true: %d %+v", st, third)
	}

	// One instance, a 3 s call: the first runs, the others wait.
	eventually(t, 20*time.Second, "the first call never showed running", func() bool {
		r := n.record("slow", first.ExecutionID)
		return r != nil && r.Status == "running"
	})
	// A queued record waits a moment (two flushes) for its call's end
	// before it is written.
	var second1 *asyncRecord
	eventually(t, 20*time.Second, "the second call never showed queued while the first ran", func() bool {
		second1 = n.record("slow", second.ExecutionID)
		return second1 != nil
	})
	if r := second1; r.Status != "queued" || r.Attempt != 0 || r.Trigger != "async" {
		t.Errorf("the second call while the first runs: %+v", r)
	}
	var depth struct {
		Queued   int `json:"queued"`
		InFlight int `json:"inFlight"`
	}
	if st := n.do("GET", "/api/functions/slow/async", nil, &depth); st != 200 || depth.Queued != 2 || depth.InFlight != 1 {
		t.Errorf("queue while the first runs: %d %+v, want 2 queued and 1 in flight", st, depth)
	}

	for _, id := range []string{first.ExecutionID, second.ExecutionID, third.ExecutionID} {
		r := n.final("slow", id, 60*time.Second)
		if r.Status != "success" || r.Attempt != 1 || r.Trigger != "async" {
			t.Errorf("call %s: %+v", id, r)
		}
	}
	if r := n.record("slow", second.ExecutionID); string(r.Result) != `{"got": {"n": 2}}` && string(r.Result) != `{"got":{"n":2}}` {
		t.Errorf("result %s", r.Result)
	}

	// The live stream showed each stage of the first call, in order.
	var stages []string
	timeout := time.After(20 * time.Second)
	for len(stages) < 3 {
		select {
		case ev := <-events:
			if ev["executionId"] == first.ExecutionID {
				stages = append(stages, fmt.Sprint(ev["status"]))
			}
		case <-timeout:
			t.Fatalf("events of the first call: %v", stages)
		}
	}
	if strings.Join(stages, ",") != "queued,running,success" {
		t.Errorf("events of the first call: %v", stages)
	}
}

// TestAsyncRetriesDeadLettersAndReplay: a failing call is tried again
// after its backoff, then kept in the dead letters; the failure
// destination (a URL) gets Lambda's record; a replay runs it again.
func TestAsyncRetriesDeadLettersAndReplay(t *testing.T) {
	n := start(t)
	var hooks destinations
	n.do("POST", "/api/functions", asyncFunction{Name: "flaky", Runtime: "python", Code: asyncPy,
		Env:   map[string]string{"FAIL": "1"},
		Async: map[string]any{"maxRetries": 2, "retryBackoff": "300ms", "onFailure": map[string]string{"url": hooks.serve(t)}},
	}, nil)
	a, _ := n.enqueue("flaky", map[string]any{"order": 7})
	// Each attempt's outcome is recorded; a retry replaces it.
	var r *asyncRecord
	eventually(t, 60*time.Second, "the call never reached its third attempt's end", func() bool {
		r = n.record("flaky", a.ExecutionID)
		return r != nil && r.Attempt == 3 && r.Status != "running"
	})
	if r.Status != "error" {
		t.Fatalf("final record %+v, want error on attempt 3", r)
	}
	var d deadLetter
	eventually(t, 20*time.Second, "no dead letter", func() bool {
		return n.do("GET", "/api/functions/flaky/dead-letters/"+a.ExecutionID, nil, &d) == 200
	})
	if d.Attempts != 3 || d.Reason != "RetriesExhausted" || d.Error == nil || d.Error.Type != "ValueError" {
		t.Errorf("dead letter %+v", d)
	}
	var ev map[string]int
	if err := json.Unmarshal(d.Event, &ev); err != nil || ev["order"] != 7 {
		t.Errorf("dead letter event %s", d.Event)
	}
	// Backoffs of 300 ms then 600 ms lie between the first attempt and the last.
	if gap := d.DeadAt.Sub(d.AcceptedAt); gap < 900*time.Millisecond {
		t.Errorf("three attempts took %s, less than their backoffs (900 ms)", gap)
	}
	var list struct {
		DeadLetters []deadLetter `json:"deadLetters"`
		Total       int          `json:"total"`
	}
	if st := n.do("GET", "/api/functions/flaky/dead-letters", nil, &list); st != 200 || list.Total != 1 || len(list.DeadLetters) != 1 || list.DeadLetters[0].ExecutionID != a.ExecutionID {
		t.Errorf("dead letters: %d %+v", st, list)
	}
	eventually(t, 20*time.Second, "the failure destination got nothing", func() bool { return len(hooks.all()) == 1 })
	rec := hooks.all()[0]
	rc, _ := rec["requestContext"].(map[string]any)
	if rc["condition"] != "RetriesExhausted" || rc["requestId"] != a.ExecutionID || rc["approximateInvokeCount"] != 3.0 {
		t.Errorf("destination record %v", rec)
	}
	if p, _ := rec["requestPayload"].(map[string]any); p["order"] != 7.0 {
		t.Errorf("destination record payload %v", rec["requestPayload"])
	}
	if p, _ := rec["responsePayload"].(map[string]any); p["errorType"] != "ValueError" {
		t.Errorf("destination record response %v", rec["responsePayload"])
	}

	// Fixed, then replayed: it runs again, as a new call, and leaves the
	// dead letters.
	if st := n.do("PUT", "/api/functions/flaky", map[string]any{"env": map[string]string{"FAIL": "0"}}, nil); st != 200 {
		t.Fatalf("update: %d", st)
	}
	var again acceptedCall
	if st := n.do("POST", "/api/functions/flaky/dead-letters/"+a.ExecutionID+"/replay", nil, &again); st != http.StatusAccepted || again.ExecutionID == "" || again.ExecutionID == a.ExecutionID {
		t.Fatalf("replay: %d %+v", st, again)
	}
	if r := n.final("flaky", again.ExecutionID, 60*time.Second); r.Status != "success" || r.Attempt != 1 {
		t.Errorf("replayed call %+v", r)
	}
	if st := n.do("GET", "/api/functions/flaky/dead-letters/"+a.ExecutionID, nil, nil); st != 404 {
		t.Errorf("dead letter after its replay: %d, want 404", st)
	}

	// A dead letter can be dropped too.
	if st := n.do("PUT", "/api/functions/flaky", map[string]any{"env": map[string]string{"FAIL": "1"}, "async": map[string]any{"maxRetries": 0}}, nil); st != 200 {
		t.Fatalf("update: %d", st)
	}
	b, _ := n.enqueue("flaky", map[string]any{})
	eventually(t, 60*time.Second, "no second dead letter", func() bool {
		return n.do("GET", "/api/functions/flaky/dead-letters/"+b.ExecutionID, nil, &d) == 200
	})
	if d.Attempts != 1 {
		t.Errorf("maxRetries 0: %d attempts", d.Attempts)
	}
	if st := n.do("DELETE", "/api/functions/flaky/dead-letters/"+b.ExecutionID, nil, nil); st != 204 {
		t.Errorf("delete dead letter: %d", st)
	}
	if st := n.do("GET", "/api/functions/flaky/dead-letters", nil, &list); st != 200 || list.Total != 0 {
		t.Errorf("dead letters after the delete: %+v", list)
	}
}

// TestAsyncIdempotencyAndDestinationFunction: a repeated idempotency key
// queues nothing and answers the first call's id; a success destination
// function gets Lambda's record as an async call.
func TestAsyncIdempotencyAndDestinationFunction(t *testing.T) {
	n := start(t)
	n.create(function{Name: "sink", Runtime: "python", Code: asyncPy})
	n.do("POST", "/api/functions", asyncFunction{Name: "source", Runtime: "python", Code: asyncPy,
		Async: map[string]any{"onSuccess": map[string]string{"function": "sink"}},
	}, nil)
	key := []string{"X-Nimbus-Invocation-Type", "Event", "X-Nimbus-Idempotency-Key", "order-42"}
	a, _ := n.enqueue("source", map[string]any{"n": 1}, key...)
	b, _ := n.enqueue("source", map[string]any{"n": 1}, key...)
	if a.Duplicate || !b.Duplicate || b.ExecutionID != a.ExecutionID {
		t.Errorf("same key twice: %+v then %+v", a, b)
	}
	c, _ := n.enqueue("source", map[string]any{"n": 2}, "X-Nimbus-Invocation-Type", "Event", "X-Nimbus-Idempotency-Key", "order-43")
	if c.Duplicate || c.ExecutionID == a.ExecutionID {
		t.Errorf("another key: %+v", c)
	}
	n.final("source", a.ExecutionID, 60*time.Second)
	n.final("source", c.ExecutionID, 60*time.Second)
	if got, st := n.history("source", 100); st != 200 || len(got) != 2 {
		t.Errorf("history of source: %d records, want 2", len(got))
	}

	// Each success reached the sink, once.
	var sunk []execution
	eventually(t, 60*time.Second, "the sink did not get both records", func() bool {
		sunk, _ = n.history("sink", 100)
		done := 0
		for _, ex := range sunk {
			if ex.Status == "success" {
				done++
			}
		}
		return done == 2
	})
	if len(sunk) != 2 {
		t.Errorf("sink history: %d records", len(sunk))
	}
	for _, ex := range sunk {
		r := n.record("sink", ex.ExecutionID)
		var rec struct {
			RequestContext struct {
				RequestID, Condition string
			}
			ResponsePayload map[string]any
		}
		if err := json.Unmarshal(r.Event, &rec); err != nil || rec.RequestContext.Condition != "Success" || r.Trigger != "destination" ||
			(rec.RequestContext.RequestID != a.ExecutionID && rec.RequestContext.RequestID != c.ExecutionID) || rec.ResponsePayload["got"] == nil {
			t.Errorf("sink call %+v: event %s (%v)", r, r.Event, err)
		}
	}
}

// TestAsyncSurvivesSIGKILL accepts calls, kills the server mid-way with
// SIGKILL, starts it again on the same data, and sees every accepted
// call reach success, each with one record and its attempt number.
func TestAsyncSurvivesSIGKILL(t *testing.T) {
	dir := t.TempDir()
	env := []string{"NIMBUS_DATA_DIR=" + dir, "NIMBUS_ASYNC_ACK_WAIT=2s"}
	n := start(t, env...)
	n.create(function{Name: "steady", Runtime: "python", Code: asyncPy, MaxInstances: 2})
	const calls = 40
	ids := make([]string, calls)
	for i := range ids {
		a, _ := n.enqueue("steady", map[string]any{"i": i, "sleep": 0.1})
		ids[i] = a.ExecutionID
	}
	eventually(t, 60*time.Second, "no call finished before the kill", func() bool {
		got, _ := n.history("steady", 1000)
		done := 0
		for _, ex := range got {
			if ex.Status == "success" {
				done++
			}
		}
		return done >= 4
	})
	n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited

	n = start(t, env...)
	for i, id := range ids {
		r := n.final("steady", id, 120*time.Second)
		if r.Status != "success" || r.Attempt < 1 {
			t.Errorf("call %d: %+v", i, r)
		}
		var got struct{ Got struct{ I int } }
		if json.Unmarshal(r.Result, &got); got.Got.I != i {
			t.Errorf("call %d answered %s", i, r.Result)
		}
	}
	got, _ := n.history("steady", 1000)
	if len(got) != calls {
		t.Errorf("%d records for %d calls", len(got), calls)
	}
}

// TestAsyncGracefulShutdownFinishesWhatRuns: SIGTERM while an async call
// runs lets it finish and acknowledges it: after a restart it is not run
// again.
func TestAsyncGracefulShutdownFinishesWhatRuns(t *testing.T) {
	dir := t.TempDir()
	env := []string{"NIMBUS_DATA_DIR=" + dir, "NIMBUS_ASYNC_ACK_WAIT=2s"}
	n := start(t, env...)
	n.create(function{Name: "long", Runtime: "python", Code: asyncPy})
	a, _ := n.enqueue("long", map[string]any{"sleep": 2})
	eventually(t, 20*time.Second, "never running", func() bool {
		r := n.record("long", a.ExecutionID)
		return r != nil && r.Status == "running"
	})
	n.stop()
	n = start(t, env...)
	r := n.final("long", a.ExecutionID, 5*time.Second)
	if r.Status != "success" || r.Attempt != 1 {
		t.Fatalf("after a graceful restart: %+v", r)
	}
	time.Sleep(4 * time.Second) // two ack waits: a call left unacknowledged would run again
	if r := n.record("long", a.ExecutionID); r.Attempt != 1 || r.Status != "success" {
		t.Errorf("ran again after the restart: %+v", r)
	}
}

// TestAsyncWithExternalNATS runs async calls through a NATS server of
// the test's own, on loopback, instead of the embedded one.
func TestAsyncWithExternalNATS(t *testing.T) {
	srv, err := natsserver.NewServer(&natsserver.Options{
		Host: "127.0.0.1", Port: natsserver.RANDOM_PORT, NoSigs: true, NoLog: true,
		JetStream: true, StoreDir: t.TempDir(), MaxPayload: 8 << 20,
		Username: "nimbus", Password: "e2e-secret",
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if !srv.ReadyForConnections(20 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	n := start(t, "NIMBUS_NATS_URL="+srv.ClientURL(), "NIMBUS_NATS_USER=nimbus", "NIMBUS_NATS_PASSWORD=e2e-secret")
	n.create(function{Name: "ext", Runtime: "python", Code: asyncPy})
	a, _ := n.enqueue("ext", map[string]any{"n": 1})
	if r := n.final("ext", a.ExecutionID, 60*time.Second); r.Status != "success" || r.Attempt != 1 {
		t.Errorf("through an external NATS: %+v", r)
	}
	// The queue is the external server's.
	jsz, err := srv.Jsz(&natsserver.JSzOptions{})
	if err != nil || jsz.Streams < 2 || jsz.Messages == 0 && jsz.Consumers == 0 {
		t.Errorf("the external server holds no Nimbus streams: %+v %v", jsz, err)
	}
}
