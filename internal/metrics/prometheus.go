package metrics

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// Prometheus metrics. Per-function series carry two labels: function, the
// name people read, and function_id, which never changes. Renaming a
// function starts new series under the new name; deleting one removes its
// series, so the number of series follows the number of functions.

const namespace = "nimbus"

// latencyBuckets (seconds) resolve warm calls of a tenth of a millisecond
// up to the longest timeout, 15 minutes.
var latencyBuckets = []float64{
	.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5,
	1, 2.5, 5, 10, 30, 60, 120, 300, 900,
}

// NewRegistry returns a registry holding the Go runtime and process
// collectors, for the rest of Nimbus's collectors to join.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// promMetrics are the collectors the recorder feeds.
type promMetrics struct {
	invocations   *prometheus.CounterVec   // function, function_id, status, cold
	byTrigger     *prometheus.CounterVec   // function, function_id, trigger, status
	duration      *prometheus.HistogramVec // function, function_id
	coldStart     *prometheus.HistogramVec // function, function_id
	queueWait     *prometheus.HistogramVec // function, function_id
	driverStart   *prometheus.HistogramVec // driver
	storeBatch    prometheus.Histogram
	storeLatency  prometheus.Histogram
	storeErrors   prometheus.Counter
	eventsDropped prometheus.Counter
	subscribers   prometheus.Gauge
}

var fnLabels = []string{"function", "function_id"}

func newPromMetrics(reg prometheus.Registerer) *promMetrics {
	p := &promMetrics{
		invocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "invocations_total",
			Help: "Finished invocations by function, status (success, error, timeout, oom, crashed, rejected) and whether they started a new instance.",
		}, []string{"function", "function_id", "status", "cold"}),
		byTrigger: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "invocations_by_trigger_total",
			Help: "Finished invocations by function, the way they came in (api, http, async, schedule, destination) and status; a series appears with its first invocation.",
		}, []string{"function", "function_id", "trigger", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "invocation_duration_seconds",
			Help:    "Time from the start of an invocation to its reply, cold start included; rejected calls are not counted.",
			Buckets: latencyBuckets,
		}, fnLabels),
		coldStart: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "cold_start_duration_seconds",
			Help:    "Time to start an instance and load the handler, for invocations that needed one.",
			Buckets: latencyBuckets,
		}, fnLabels),
		queueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "queue_wait_seconds",
			Help:    "Time an invocation waited for an instance of its function.",
			Buckets: latencyBuckets,
		}, fnLabels),
		driverStart: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "driver_start_duration_seconds",
			Help:    "Time a driver took to start an instance and load its handler.",
			Buckets: latencyBuckets,
		}, []string{"driver"}),
		storeBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "store_batch_records",
			Help:    "Execution records per batch written to the store.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}),
		storeLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "store_write_duration_seconds",
			Help:    "Time to write one batch of execution records to the store.",
			Buckets: latencyBuckets,
		}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "store_write_errors_total",
			Help: "Batches of execution records the store failed to write.",
		}),
		eventsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "events_dropped_total",
			Help: "Live events not delivered because a subscriber's buffer was full (a slow client).",
		}),
		subscribers: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "event_subscribers",
			Help: "Clients following the live event stream.",
		}),
	}
	reg.MustRegister(p.invocations, p.byTrigger, p.duration, p.coldStart, p.queueWait, p.driverStart,
		p.storeBatch, p.storeLatency, p.storeErrors, p.eventsDropped, p.subscribers)
	return p
}

// fnProm holds one function's Prometheus series, looked up once rather
// than by label on every call.
type fnProm struct {
	id, name, driver string
	calls            [numStatuses][2]prometheus.Counter // status, cold
	// byTrigger are made on first use: most functions see one or two
	// triggers.
	byTrigger   [len(triggerNames)][numStatuses]atomic.Pointer[prometheus.Counter]
	duration    prometheus.Observer
	coldStart   prometheus.Observer
	queueWait   prometheus.Observer
	driverStart prometheus.Observer
}

func (p *promMetrics) observe(r *Recorder, m *function, f *fn.Function, e *fn.Execution, o *observation) {
	name, driver := e.FunctionID, ""
	if f != nil {
		name, driver = f.Name, f.Driver
	}
	c := m.prom.Load()
	if c == nil || c.name != name || c.driver != driver {
		c = p.children(r, m, e.FunctionID, name, driver)
	}
	cold := 0
	if o.cold {
		cold = 1
		c.coldStart.Observe(o.initMs / 1e3)
		c.driverStart.Observe(o.initMs / 1e3)
	}
	c.calls[o.status][cold].Inc()
	t := triggerIndex(e.Trigger)
	bt := c.byTrigger[t][o.status].Load()
	if bt == nil {
		ctr := p.byTrigger.WithLabelValues(name, e.FunctionID, triggerNames[t], string(fn.Statuses[o.status]))
		c.byTrigger[t][o.status].CompareAndSwap(nil, &ctr)
		bt = &ctr
	}
	(*bt).Inc()
	if o.ran {
		c.duration.Observe(o.durMs / 1e3)
	}
	c.queueWait.Observe(e.QueueMs / 1e3)
}

// children looks up a function's series for its current name and driver,
// and removes the ones of its former name.
func (p *promMetrics) children(r *Recorder, m *function, id, name, driver string) *fnProm {
	c := &fnProm{id: id, name: name, driver: driver}
	for i, st := range fn.Statuses {
		for cold := range 2 {
			c.calls[i][cold] = p.invocations.WithLabelValues(name, id, string(st), strconv.FormatBool(cold == 1))
		}
	}
	c.duration = p.duration.WithLabelValues(name, id)
	c.coldStart = p.coldStart.WithLabelValues(name, id)
	c.queueWait = p.queueWait.WithLabelValues(name, id)
	if driver == "" {
		driver = fn.DefaultDriver
	}
	c.driverStart = p.driverStart.WithLabelValues(driver)
	old := m.prom.Swap(c)
	if old != nil && old.name != name {
		p.forget(old)
	}
	if r.forgotten(id) { // deleted meanwhile: take back what was just made
		p.forget(c)
	}
	return c
}

// forget deletes a function's series under the name c has.
func (p *promMetrics) forget(c *fnProm) {
	labels := prometheus.Labels{"function": c.name, "function_id": c.id}
	p.invocations.DeletePartialMatch(labels)
	p.byTrigger.DeletePartialMatch(labels)
	p.duration.Delete(labels)
	p.coldStart.Delete(labels)
	p.queueWait.Delete(labels)
}

func (p *promMetrics) storeWrite(records int, took time.Duration, err error) {
	if err != nil {
		p.storeErrors.Inc()
		return
	}
	p.storeBatch.Observe(float64(records))
	p.storeLatency.Observe(took.Seconds())
}

// InstanceCount is one function's instances at a moment.
type InstanceCount struct {
	FunctionID string `json:"functionId"`
	Function   string `json:"function"` // its name
	Driver     string `json:"driver"`
	Idle       int    `json:"idle"`
	Busy       int    `json:"busy"`
	Starting   int    `json:"starting"`
	Queued     int    `json:"queued"` // calls waiting for an instance
	// RSSKiB is the resident memory of its running workers, when asked for.
	RSSKiB int64 `json:"rssKiB,omitempty"`
}

// Add is c with d's instances and queue added (d of the same function:
// another of its versions).
func (c InstanceCount) Add(d InstanceCount) InstanceCount {
	if c.Function == "" {
		c.Function, c.Driver = d.Function, d.Driver
	}
	c.Idle += d.Idle
	c.Busy += d.Busy
	c.Starting += d.Starting
	c.Queued += d.Queued
	c.RSSKiB += d.RSSKiB
	return c
}

// EngineState is what the engine reports at scrape time.
type EngineState interface {
	// AllInstances counts every function's instances, reading their
	// memory when withRSS.
	AllInstances(withRSS bool) []InstanceCount
	// InFlight is the number of calls running or waiting.
	InFlight() int
	// Dropped is how many execution records were lost.
	Dropped() int64
}

// RegisterEngine registers collectors that read the engine's state when
// Prometheus scrapes: instances by function, driver and state, queue depth,
// worker memory, calls in flight and records dropped.
func RegisterEngine(reg prometheus.Registerer, src EngineState) error {
	return reg.Register(&engineCollector{src: src})
}

type engineCollector struct{ src EngineState }

var (
	instancesDesc = prometheus.NewDesc(namespace+"_instances",
		"Instances by function, driver and state (idle, busy, starting).",
		[]string{"function", "function_id", "driver", "state"}, nil)
	queueDepthDesc = prometheus.NewDesc(namespace+"_queue_depth",
		"Calls waiting for an instance of the function.", fnLabels, nil)
	workerMemoryDesc = prometheus.NewDesc(namespace+"_worker_memory_bytes",
		"Resident memory of the function's running workers.", fnLabels, nil)
	inFlightDesc = prometheus.NewDesc(namespace+"_invocations_in_flight",
		"Invocations running or waiting for an instance.", nil, nil)
	droppedDesc = prometheus.NewDesc(namespace+"_records_dropped_total",
		"Execution records lost because the store could not keep up or failed.", nil, nil)
)

func (c *engineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{instancesDesc, queueDepthDesc, workerMemoryDesc, inFlightDesc, droppedDesc} {
		ch <- d
	}
}

func (c *engineCollector) Collect(ch chan<- prometheus.Metric) {
	for _, in := range c.src.AllInstances(true) {
		for _, s := range []struct {
			state string
			n     int
		}{{"idle", in.Idle}, {"busy", in.Busy}, {"starting", in.Starting}} {
			ch <- prometheus.MustNewConstMetric(instancesDesc, prometheus.GaugeValue, float64(s.n), in.Function, in.FunctionID, in.Driver, s.state)
		}
		ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(in.Queued), in.Function, in.FunctionID)
		ch <- prometheus.MustNewConstMetric(workerMemoryDesc, prometheus.GaugeValue, float64(in.RSSKiB)*1024, in.Function, in.FunctionID)
	}
	ch <- prometheus.MustNewConstMetric(inFlightDesc, prometheus.GaugeValue, float64(c.src.InFlight()))
	ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(c.src.Dropped()))
}

// triggerNames label the ways calls come in; "api" is POST
// /api/executions (fn.Execution.Trigger "").
var triggerNames = [...]string{"api", fn.TriggerHTTP, fn.TriggerAsync, fn.TriggerSchedule, fn.TriggerDestination, fn.TriggerReplay}

func triggerIndex(t string) int {
	for i, n := range triggerNames[1:] {
		if t == n {
			return i + 1
		}
	}
	return 0
}
