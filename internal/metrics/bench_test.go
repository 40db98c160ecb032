package metrics_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/metrics"
)

// BenchmarkRecord measures everything the invoke path does for metrics when
// an execution ends: the per-second and per-minute buckets of the system and
// of the function, the Prometheus counters and histograms, and publication
// to the live event stream. docs/benchmarks.md quotes it.
func BenchmarkRecord(b *testing.B) {
	for _, tc := range []struct {
		name        string
		subscribers int
	}{
		{"no subscribers", 0},
		{"one subscriber", 1},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r := metrics.New(metrics.Config{Registry: metrics.NewRegistry()})
			for range tc.subscribers {
				sub := r.Events().Subscribe("", 1024)
				done := make(chan struct{})
				go func() {
					for {
						select {
						case <-sub.C():
						case <-done:
							return
						}
					}
				}()
				b.Cleanup(func() { close(done); sub.Close() })
			}
			fns := make([]*fn.Function, 8)
			for i := range fns {
				fns[i] = &fn.Function{ID: fn.NewID(), Name: fmt.Sprintf("f%d", i), Driver: "sandbox"}
			}
			execs := make([]fn.Execution, 64)
			for i := range execs {
				f := fns[i%len(fns)]
				execs[i] = fn.Execution{
					ID: fn.NewID(), FunctionID: f.ID, Status: fn.StatusSuccess,
					DurationMs: 0.2 + float64(i)/10, QueueMs: 0.01, PeakMemoryKiB: 20_000,
				}
				if i%16 == 0 {
					execs[i].ColdStart, execs[i].InitMs = true, 40
				}
				if i%8 == 3 {
					execs[i].Status = fn.StatusError
					execs[i].Error = &fn.ErrorInfo{Type: "ValueError", Message: "bad"}
				}
			}
			now := time.Now()
			for i := range execs {
				execs[i].StartedAt = now
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				e := &execs[i%len(execs)]
				r.Record(fns[i%len(fns)], e)
			}
		})
	}
}
