package metrics_test

import (
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/metrics"
)

func TestEventsFilterAndDeliver(t *testing.T) {
	reg := metrics.NewRegistry()
	r := metrics.New(metrics.Config{Registry: reg})
	a := &fn.Function{ID: "ida", Name: "a"}
	b := &fn.Function{ID: "idb", Name: "b"}
	all := r.Events().Subscribe("", 10)
	onlyB := r.Events().Subscribe("idb", 10)
	defer all.Close()
	defer onlyB.Close()
	if n := r.Events().Subscribers(); n != 2 {
		t.Fatalf("%d subscribers, want 2", n)
	}

	ea := exec(a, time.Now(), fn.StatusSuccess, 3)
	ea.ColdStart = true
	eb := exec(b, time.Now(), fn.StatusError, 4)
	r.Record(a, ea)
	r.Record(b, eb)

	got := []metrics.Event{<-all.C(), <-all.C()}
	if got[0].ExecutionID != ea.ID || got[0].Function != "a" || got[0].FunctionID != "ida" || !got[0].ColdStart || got[0].DurationMs != 3 ||
		got[1].ExecutionID != eb.ID || got[1].Status != fn.StatusError {
		t.Errorf("all: %+v", got)
	}
	if ev := <-onlyB.C(); ev.ExecutionID != eb.ID {
		t.Errorf("filtered: %+v", ev)
	}
	select {
	case ev := <-onlyB.C():
		t.Errorf("filtered subscriber got another function's event %+v", ev)
	default:
	}
}

func TestEventsNeverBlock(t *testing.T) {
	reg := metrics.NewRegistry()
	r := metrics.New(metrics.Config{Registry: reg})
	f := &fn.Function{ID: "id1", Name: "one"}
	stalled := r.Events().Subscribe("", 4) // never read
	reader := r.Events().Subscribe("", 1000)
	done := make(chan struct{})
	go func() {
		// With a blocking send this loop would never finish.
		for range 100 {
			r.Record(f, exec(f, time.Now(), fn.StatusSuccess, 1))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Record blocked on a subscriber that does not read")
	}
	if stalled.Dropped() != 96 || reader.Dropped() != 0 || r.Events().Dropped() != 96 {
		t.Errorf("dropped: stalled %d, reader %d, total %d; want 96, 0, 96", stalled.Dropped(), reader.Dropped(), r.Events().Dropped())
	}
	if len(reader.C()) != 100 {
		t.Errorf("the reading subscriber has %d events, want 100", len(reader.C()))
	}
	if v := gather(t, reg)["nimbus_events_dropped_total"].GetMetric()[0].GetCounter().GetValue(); v != 96 {
		t.Errorf("nimbus_events_dropped_total %v, want 96", v)
	}

	stalled.Close()
	stalled.Close() // twice is fine
	r.Record(f, exec(f, time.Now(), fn.StatusSuccess, 1))
	if stalled.Dropped() != 96 {
		t.Errorf("a closed subscription still counts drops: %d", stalled.Dropped())
	}
	if n := r.Events().Subscribers(); n != 1 {
		t.Errorf("%d subscribers after Close, want 1", n)
	}
	if v := gather(t, reg)["nimbus_event_subscribers"].GetMetric()[0].GetGauge().GetValue(); v != 1 {
		t.Errorf("nimbus_event_subscribers %v, want 1", v)
	}
}

// Log events go only to the subscribers that asked for them, are wanted
// only while one follows the function, and a subscriber that does not
// read loses them, counted, without blocking the publisher.
func TestLogEvents(t *testing.T) {
	r := metrics.New(metrics.Config{Registry: metrics.NewRegistry()})
	ev := r.Events()
	a := &fn.Function{ID: "ida", Name: "a"}
	if ev.WantsLogs("ida") {
		t.Fatal("logs wanted with no subscriber")
	}
	plain := ev.Subscribe("", 10)
	defer plain.Close()
	if ev.WantsLogs("ida") {
		t.Fatal("logs wanted by a subscriber that did not ask for them")
	}
	other := ev.SubscribeLogs("idb", 10)
	if ev.WantsLogs("ida") || !ev.WantsLogs("idb") {
		t.Fatal("WantsLogs does not follow the subscriber's function")
	}
	other.Close()
	slow := ev.SubscribeLogs("", 2)
	if !ev.WantsLogs("ida") {
		t.Fatal("logs not wanted with a subscriber of every function's")
	}
	for range 100 {
		ev.PublishLog(a, "x1", "line\n")
	}
	if got := slow.Dropped(); got != 98 {
		t.Fatalf("dropped %d, want 98", got)
	}
	if e := <-slow.C(); e.Log == nil || e.Log.Data != "line\n" || e.ExecutionID != "x1" || e.Function != "a" {
		t.Fatalf("log event %+v", e)
	}
	select {
	case e := <-plain.C():
		t.Fatalf("a subscriber without logs got %+v", e)
	default:
	}
	slow.Close()
	if ev.WantsLogs("ida") {
		t.Fatal("logs wanted after the last log subscriber left")
	}
}
