package api_test

import (
	"net/http"
	"testing"
)

type logEvent struct {
	ExecutionID string `json:"executionId"`
	FunctionID  string `json:"functionId"`
	Function    string `json:"function"`
	Data        string `json:"data"`
}

// With ?logs=1 the stream carries what a call prints while it runs; the
// streams that did not ask get no log events, and a call followed by none
// is not asked to stream at all.
func TestEventStreamLogs(t *testing.T) {
	h := newHarness(t, options{})
	a := h.create("alpha", 1)
	h.create("bravo", 1)
	plain := h.follow("/api/events?function=alpha", nil)
	plain.next("metrics")
	if h.metrics.Events().WantsLogs(a.ID) {
		t.Fatal("WantsLogs with only a stream that did not ask for logs")
	}
	logs := h.follow("/api/events?function=alpha&logs=1", nil)
	logs.next("metrics")

	release := make(chan struct{})
	holds.Store(t.Name(), release)
	done := make(chan execution, 1)
	go func() {
		var ex execution
		h.do("POST", "/api/executions/alpha", fakeEvent{Print: []string{"first line\n", "second\n"}, Hold: t.Name()}, &ex)
		done <- ex
	}()
	// The lines come while the call is held.
	first := until(logs, "log", func(l logEvent) bool { return true })
	if first.Data != "first line\n" || first.FunctionID != a.ID || first.Function != "alpha" || first.ExecutionID == "" {
		t.Fatalf("first log event %+v", first)
	}
	if second := until(logs, "log", func(l logEvent) bool { return true }); second.Data != "second\n" || second.ExecutionID != first.ExecutionID {
		t.Fatalf("second log event %+v", second)
	}
	select {
	case ex := <-done:
		t.Fatalf("the call ended while held: %+v", ex)
	default:
	}
	close(release)
	ex := <-done
	if ex.ExecutionID != first.ExecutionID {
		t.Fatalf("log events of %s, the call was %s", first.ExecutionID, ex.ExecutionID)
	}
	if got := until(logs, "execution", func(e executionEvent) bool { return true }); got.ExecutionID != ex.ExecutionID {
		t.Fatalf("execution event %+v", got)
	}
	// The plain stream saw the execution and nothing of its output.
	for ev := range plain.events {
		if ev.name == "log" {
			t.Fatalf("a stream without logs=1 got %+v", ev)
		}
		if ev.name == "execution" {
			break
		}
	}

	// Another function's calls are not streamed to alpha's follower, and
	// with no one following its logs a call does not ask for them.
	if h.metrics.Events().WantsLogs("nobody") {
		t.Fatal("WantsLogs of a function followed by no log stream")
	}
	if !h.metrics.Events().WantsLogs(a.ID) {
		t.Fatal("WantsLogs(alpha) is false with a log stream following it")
	}
	h.invoke("bravo", fakeEvent{Print: []string{"bravo's\n"}})
	h.invoke("alpha", fakeEvent{Print: []string{"third\n"}})
	if got := until(logs, "log", func(l logEvent) bool { return true }); got.Data != "third\n" {
		t.Fatalf("log event %+v, want alpha's third line", got)
	}
}

func TestEventStreamLogsParam(t *testing.T) {
	h := newHarness(t, options{})
	resp, err := http.Get(h.srv.URL + "/api/events?logs=maybe")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("logs=maybe: %d, want 400", resp.StatusCode)
	}
}
