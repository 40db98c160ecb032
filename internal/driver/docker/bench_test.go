package docker_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver/docker"
	"github.com/nimbusfaas/nimbus/internal/driver/drivertest"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

var benchCode = map[string]string{
	runtime.Python: "def handler(event, context):\n    return event\n",
	runtime.NodeJS: "exports.handler = async (event) => event;\n",
}

// firstReplies measures, b.N times, a new function's Start and first call;
// ready is called (untimed) before each.
func firstReplies(b *testing.B, d *docker.Driver, rt string, ready func()) {
	var took []time.Duration
	for b.Loop() {
		b.StopTimer()
		ready()
		f := drivertest.Function(b, rt, drivertest.Source(rt, benchCode[rt]))
		b.StartTimer()
		t0 := time.Now()
		in := drivertest.Start(b, d, f)
		drivertest.MustInvoke[int](b, in, 1)
		took = append(took, time.Since(t0))
		b.StopTimer()
		in.Kill("benchmark")
		<-in.Done()
		b.StartTimer()
	}
	report(b, took)
}

func report(b *testing.B, took []time.Duration) {
	if len(took) == 0 {
		return
	}
	slices.Sort(took)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(took[len(took)/2]), "p50-ms")
	b.ReportMetric(ms(took[len(took)*9/10]), "p90-ms")
}

// BenchmarkCreateStart is the Engine API's part of a cold start: create
// and start a container (the shim in it then still has to start).
func BenchmarkCreateStart(b *testing.B) {
	for _, rt := range drivertest.Runtimes {
		b.Run(rt, func(b *testing.B) {
			d := newDriver(b, noPool)
			var took []time.Duration
			for b.Loop() {
				t0 := time.Now()
				stop, err := d.CreateStart(context.Background(), rt)
				if err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(t0))
				b.StopTimer()
				stop()
				b.StartTimer()
			}
			report(b, took)
		})
	}
}

// BenchmarkColdStart: no pool, so each first reply includes container
// create and start, the interpreter's start-up and loading the handler.
func BenchmarkColdStart(b *testing.B) {
	for _, rt := range drivertest.Runtimes {
		b.Run(rt, func(b *testing.B) {
			d := newDriver(b, noPool)
			firstReplies(b, d, rt, func() {})
		})
	}
}

// BenchmarkPooledFirstReply: a started generic container is waiting, so a
// first reply is writing the files, Init (loading the handler) and a call.
func BenchmarkPooledFirstReply(b *testing.B) {
	for _, rt := range drivertest.Runtimes {
		b.Run(rt, func(b *testing.B) {
			d := newDriver(b, map[string]string{docker.EnvPool: "1"})
			d.Warm()
			firstReplies(b, d, rt, func() {
				deadline := time.Now().Add(time.Minute)
				for d.PooledReady(rt) == 0 && time.Now().Before(deadline) {
					time.Sleep(5 * time.Millisecond)
				}
				time.Sleep(500 * time.Millisecond) // its interpreter has started, as in a pool filled a while ago
			})
		})
	}
}

// BenchmarkWarmInvoke is the round trip of a call to a warm container.
func BenchmarkWarmInvoke(b *testing.B) {
	for _, rt := range drivertest.Runtimes {
		b.Run(rt, func(b *testing.B) {
			d := newDriver(b, noPool)
			in := drivertest.Start(b, d, drivertest.Function(b, rt, drivertest.Source(rt, benchCode[rt])))
			var took []time.Duration
			for b.Loop() {
				t0 := time.Now()
				drivertest.MustInvoke[int](b, in, 1)
				took = append(took, time.Since(t0))
			}
			report(b, took)
		})
	}
}
