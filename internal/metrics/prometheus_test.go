package metrics_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/metrics"
)

// gather returns the families of reg by name.
func gather(t *testing.T, reg prometheus.Gatherer) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

// find returns the metric of fam whose labels include want, or nil.
func find(fam *dto.MetricFamily, want map[string]string) *dto.Metric {
	if fam == nil {
		return nil
	}
next:
	for _, m := range fam.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		return m
	}
	return nil
}

func TestPrometheusCounts(t *testing.T) {
	reg := metrics.NewRegistry()
	r := metrics.New(metrics.Config{Registry: reg})
	f := &fn.Function{ID: "id1", Name: "one", Driver: "sandbox"}
	now := time.Now()
	cold := exec(f, now, fn.StatusSuccess, 250)
	cold.ColdStart, cold.InitMs, cold.QueueMs = true, 200, 3
	r.Record(f, cold)
	for range 3 {
		r.Record(f, exec(f, now, fn.StatusSuccess, 0.4))
	}
	r.Record(f, exec(f, now, fn.StatusError, 2))
	r.Record(f, exec(f, now, fn.StatusRejected, 5000))
	r.StoreWrite(6, 3*time.Millisecond, nil)

	fams := gather(t, reg)
	for _, tc := range []struct {
		status, cold string
		want         float64
	}{
		{"success", "true", 1}, {"success", "false", 3}, {"error", "false", 1},
		{"rejected", "false", 1}, {"timeout", "false", 0},
	} {
		m := find(fams["nimbus_invocations_total"], map[string]string{"function": "one", "function_id": "id1", "status": tc.status, "cold": tc.cold})
		if got := m.GetCounter().GetValue(); m == nil || got != tc.want {
			t.Errorf("invocations %s cold=%s = %v, want %v", tc.status, tc.cold, got, tc.want)
		}
	}
	h := find(fams["nimbus_invocation_duration_seconds"], map[string]string{"function": "one"}).GetHistogram()
	if h.GetSampleCount() != 5 { // the rejected call never ran
		t.Errorf("duration samples %d, want 5", h.GetSampleCount())
	}
	// Sub-millisecond calls are resolved: three are at most 0.5 ms.
	for _, b := range h.GetBucket() {
		if b.GetUpperBound() == 0.0005 && b.GetCumulativeCount() != 3 {
			t.Errorf("calls up to 0.5 ms: %d, want 3", b.GetCumulativeCount())
		}
	}
	if c := find(fams["nimbus_cold_start_duration_seconds"], map[string]string{"function": "one"}).GetHistogram(); c.GetSampleCount() != 1 || c.GetSampleSum() != 0.2 {
		t.Errorf("cold starts %d, sum %v", c.GetSampleCount(), c.GetSampleSum())
	}
	if d := find(fams["nimbus_driver_start_duration_seconds"], map[string]string{"driver": "sandbox"}).GetHistogram(); d.GetSampleCount() != 1 {
		t.Errorf("driver starts %d, want 1", d.GetSampleCount())
	}
	if q := find(fams["nimbus_queue_wait_seconds"], map[string]string{"function": "one"}).GetHistogram(); q.GetSampleCount() != 6 {
		t.Errorf("queue waits %d, want 6", q.GetSampleCount())
	}
	if b := fams["nimbus_store_batch_records"].GetMetric()[0].GetHistogram(); b.GetSampleCount() != 1 || b.GetSampleSum() != 6 {
		t.Errorf("store batches %d of %v records", b.GetSampleCount(), b.GetSampleSum())
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "nimbus_store_write_duration_seconds"} {
		if fams[name] == nil {
			t.Errorf("no %s", name)
		}
	}
}

func TestPrometheusSeriesFollowFunctions(t *testing.T) {
	reg := metrics.NewRegistry()
	r := metrics.New(metrics.Config{Registry: reg})
	f := &fn.Function{ID: "id1", Name: "old-name"}
	other := &fn.Function{ID: "id2", Name: "other"}
	r.Record(f, exec(f, time.Now(), fn.StatusSuccess, 1))
	r.Record(other, exec(other, time.Now(), fn.StatusSuccess, 1))

	renamed := &fn.Function{ID: "id1", Name: "new-name"}
	r.Record(renamed, exec(renamed, time.Now(), fn.StatusSuccess, 1))
	fams := gather(t, reg)
	if m := find(fams["nimbus_invocations_total"], map[string]string{"function": "old-name"}); m != nil {
		t.Errorf("series of the old name remain after a rename: %v", m)
	}
	if m := find(fams["nimbus_invocations_total"], map[string]string{"function": "new-name", "status": "success", "cold": "false"}); m.GetCounter().GetValue() != 1 {
		t.Errorf("new name: %v", m)
	}

	r.Forget("id1")
	r.Record(renamed, exec(renamed, time.Now(), fn.StatusSuccess, 1)) // ends after the delete
	fams = gather(t, reg)
	for _, name := range []string{"nimbus_invocations_total", "nimbus_invocation_duration_seconds", "nimbus_queue_wait_seconds", "nimbus_cold_start_duration_seconds"} {
		if m := find(fams[name], map[string]string{"function_id": "id1"}); m != nil {
			t.Errorf("%s keeps a deleted function's series: %v", name, m)
		}
	}
	if m := find(fams["nimbus_invocations_total"], map[string]string{"function": "other", "status": "success", "cold": "false"}); m.GetCounter().GetValue() != 1 {
		t.Errorf("another function's series were touched: %v", m)
	}
}

type fakeEngine struct{ counts []metrics.InstanceCount }

func (e fakeEngine) AllInstances(bool) []metrics.InstanceCount { return e.counts }
func (e fakeEngine) InFlight() int                             { return 4 }
func (e fakeEngine) Dropped() int64                            { return 9 }

func TestPrometheusEngineState(t *testing.T) {
	reg := metrics.NewRegistry()
	eng := fakeEngine{[]metrics.InstanceCount{{FunctionID: "id1", Function: "one", Driver: "sandbox", Idle: 2, Busy: 1, Starting: 3, Queued: 5, RSSKiB: 1000}}}
	if err := metrics.RegisterEngine(reg, eng); err != nil {
		t.Fatal(err)
	}
	fams := gather(t, reg)
	for state, want := range map[string]float64{"idle": 2, "busy": 1, "starting": 3} {
		m := find(fams["nimbus_instances"], map[string]string{"function": "one", "driver": "sandbox", "state": state})
		if m.GetGauge().GetValue() != want {
			t.Errorf("%s instances %v, want %v", state, m, want)
		}
	}
	if m := find(fams["nimbus_queue_depth"], map[string]string{"function": "one"}); m.GetGauge().GetValue() != 5 {
		t.Errorf("queue depth %v", m)
	}
	if m := find(fams["nimbus_worker_memory_bytes"], map[string]string{"function": "one"}); m.GetGauge().GetValue() != 1000*1024 {
		t.Errorf("worker memory %v", m)
	}
	if v := fams["nimbus_records_dropped_total"].GetMetric()[0].GetCounter().GetValue(); v != 9 {
		t.Errorf("records dropped %v", v)
	}
	if v := fams["nimbus_invocations_in_flight"].GetMetric()[0].GetGauge().GetValue(); v != 4 {
		t.Errorf("in flight %v", v)
	}
}

func TestPrometheusCountsByTrigger(t *testing.T) {
	reg := metrics.NewRegistry()
	r := metrics.New(metrics.Config{Registry: reg})
	f := &fn.Function{ID: "id1", Name: "one", Driver: "sandbox"}
	now := time.Now()
	for _, c := range []struct {
		trigger string
		status  fn.Status
		n       int
	}{{"", fn.StatusSuccess, 2}, {fn.TriggerHTTP, fn.StatusSuccess, 3}, {fn.TriggerAsync, fn.StatusError, 1}, {fn.TriggerSchedule, fn.StatusSuccess, 1}} {
		for range c.n {
			ex := exec(f, now, c.status, 1)
			ex.Trigger = c.trigger
			r.Record(f, ex)
		}
	}
	fams := gather(t, reg)
	for _, tc := range []struct {
		trigger, status string
		want            float64
	}{{"api", "success", 2}, {"http", "success", 3}, {"async", "error", 1}, {"schedule", "success", 1}} {
		m := find(fams["nimbus_invocations_by_trigger_total"], map[string]string{"function": "one", "trigger": tc.trigger, "status": tc.status})
		if got := m.GetCounter().GetValue(); m == nil || got != tc.want {
			t.Errorf("invocations by trigger %s, %s = %v, want %v", tc.trigger, tc.status, got, tc.want)
		}
	}
	if n := len(fams["nimbus_invocations_by_trigger_total"].GetMetric()); n != 4 {
		t.Errorf("%d series by trigger, want the 4 seen", n)
	}
}
