package autoscale_test

import (
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/autoscale"
)

func BenchmarkObserve(b *testing.B) {
	tr := autoscale.NewTracker(autoscale.Config{})
	for i := 0; b.Loop(); i++ {
		tr.Observe(time.Duration(i%7200) * time.Second)
	}
}

// BenchmarkWindows asks for the decision after every Observe: the worst
// case, a full recomputation each time.
func BenchmarkWindows(b *testing.B) {
	tr := autoscale.NewTracker(autoscale.Config{})
	for i := range 1000 {
		tr.Observe(time.Duration(i%60) * time.Minute)
	}
	for i := 0; b.Loop(); i++ {
		tr.Observe(time.Duration(i%60) * time.Minute)
		_ = tr.Windows()
	}
}

// BenchmarkWindowsCached asks again without a new idle time in between.
func BenchmarkWindowsCached(b *testing.B) {
	tr := autoscale.NewTracker(autoscale.Config{})
	for i := range 1000 {
		tr.Observe(time.Duration(i%60) * time.Minute)
	}
	for b.Loop() {
		_ = tr.Windows()
	}
}
