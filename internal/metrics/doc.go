// Package metrics turns finished executions into the figures the API
// reports: counts by status, cold starts, rates and latency percentiles over
// a window. It keeps per-second and per-minute buckets in memory, each with a
// log-bucketed histogram whose percentiles are within 1% of the true value.
// Recording is a few map increments under a per-series lock, cheap enough
// for the invoke path. It knows the domain types of package fn and nothing
// else of ours.
package metrics
