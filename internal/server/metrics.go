package server

import (
	"context"
	"time"

	"github.com/nimbusfaas/nimbus/internal/metrics"
	"github.com/nimbusfaas/nimbus/internal/store"
)

// metricsSaveInterval is how often changed per-minute metrics are written
// to the store; a crash loses at most this much, a clean stop nothing.
const metricsSaveInterval = 15 * time.Second

// minuteStore lets the recorder keep its minutes in a store that has the
// optional store.MetricsStore (metrics knows no store types).
type minuteStore struct{ ms store.MetricsStore }

var _ metrics.MinuteStore = minuteStore{}

func (a minuteStore) SaveMinutes(ctx context.Context, minutes []metrics.Minute) error {
	out := make([]store.MetricMinute, len(minutes))
	for i, m := range minutes {
		out[i] = store.MetricMinute(m)
	}
	return a.ms.SaveMinutes(ctx, out)
}

func (a minuteStore) LoadMinutes(ctx context.Context, since time.Time) ([]metrics.Minute, error) {
	got, err := a.ms.LoadMinutes(ctx, since)
	out := make([]metrics.Minute, len(got))
	for i, m := range got {
		out[i] = metrics.Minute(m)
	}
	return out, err
}

func (a minuteStore) PruneMinutes(ctx context.Context, cutoff time.Time) (int64, error) {
	return a.ms.PruneMinutes(ctx, cutoff)
}

func (a minuteStore) DeleteMinutes(ctx context.Context, functionID string) error {
	return a.ms.DeleteMinutes(ctx, functionID)
}
