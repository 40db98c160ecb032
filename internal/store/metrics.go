package store

import (
	"context"
	"time"
)

// SystemMetrics is the FunctionID of the minutes that cover every
// execution, whichever function ran.
const SystemMetrics = ""

// MetricMinute is one minute of metric aggregates of one function, or of
// the whole system when FunctionID is SystemMetrics. Data is encoded by
// package metrics (counts by status, cold starts, histogram buckets) and is
// opaque to the store, which keeps it as given.
type MetricMinute struct {
	FunctionID string
	Start      time.Time // the first instant of the minute
	Data       []byte
}

// MetricsStore is an optional capability of a Store, found by type
// assertion: it keeps per-minute metric aggregates so that charts survive a
// restart. A Store without it still works; its metrics start empty.
type MetricsStore interface {
	// SaveMinutes writes minutes in one transaction, each replacing any
	// stored minute with the same FunctionID and Start.
	SaveMinutes(ctx context.Context, minutes []MetricMinute) error
	// LoadMinutes returns every minute (of every function and the system)
	// that starts at or after since, oldest first.
	LoadMinutes(ctx context.Context, since time.Time) ([]MetricMinute, error)
	// PruneMinutes deletes the minutes that start before cutoff and reports
	// how many it deleted.
	PruneMinutes(ctx context.Context, cutoff time.Time) (int64, error)
	// DeleteMinutes deletes every minute of a (deleted) function.
	DeleteMinutes(ctx context.Context, functionID string) error
}
