// Package metrics turns finished executions into the figures operators
// read: counts by status, cold starts, error types, memory, rates and
// latency percentiles over a window (Recorder), the Prometheus collectors
// behind /metrics, and the live stream of executions (Events).
//
// A Recorder keeps per-second buckets for 15 minutes and per-minute buckets
// for 24 hours, system-wide and per function, each with a log-bucketed
// Histogram whose percentiles are within 1% of the true value. Buckets merge
// by adding, so the per-minute ones are saved to an optional MinuteStore and
// loaded back at start-up: windows and charts reach back across a restart.
// Recording one execution costs well under 2 µs (BenchmarkRecord): a few map
// increments under per-series locks, atomic Prometheus updates and a
// non-blocking send to each event subscriber. It knows the domain types of
// package fn and nothing else of ours.
package metrics
