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
		parallel    bool // calls ending on every core at once
	}{
		{"no subscribers", 0, false},
		{"one subscriber", 1, false},
		{"one subscriber, parallel", 1, true},
	} {
		b.Run(tc.name, func(b *testing.B) { benchRecord(b, tc.subscribers, tc.parallel) })
	}
}

func benchRecord(b *testing.B, subscribers int, parallel bool) {
	r := metrics.New(metrics.Config{Registry: metrics.NewRegistry()})
	for range subscribers {
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
	// 8 functions, 64 executions: warm and cold, successes and errors.
	fns := make([]*fn.Function, 8)
	for i := range fns {
		fns[i] = &fn.Function{ID: fn.NewID(), Name: fmt.Sprintf("f%d", i), Driver: "sandbox"}
	}
	execs := make([]fn.Execution, 64)
	now := time.Now()
	for i := range execs {
		execs[i] = fn.Execution{
			ID: fn.NewID(), FunctionID: fns[i%len(fns)].ID, Status: fn.StatusSuccess, StartedAt: now,
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
	b.ReportAllocs()
	b.ResetTimer()
	if parallel {
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				r.Record(fns[i%len(fns)], &execs[i%len(execs)])
			}
		})
		return
	}
	for i := 0; b.Loop(); i++ {
		r.Record(fns[i%len(fns)], &execs[i%len(execs)])
	}
}
