package microvm_test

import (
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/driver/drivertest"
	"github.com/nimbusfaas/nimbus/internal/driver/microvm"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// The cold-start figures of docs/benchmarks.md ("microVM cold start"):
//
//	go test -run '^$' -bench . -benchtime 10x ./internal/driver/microvm/

var benchCode = map[string]string{
	runtime.Python: "def handler(event, context):\n    return event\n",
	runtime.NodeJS: "exports.handler = async (event) => event;\n",
}

// startAndCall starts an instance of a new function and calls it once:
// the cold start a first call pays. It reports the instance's resident
// memory once idle.
func startAndCall(b *testing.B, d driver.Driver, rt string) {
	var rss int64
	for i := 0; i < b.N; i++ {
		f := drivertest.Function(b, rt, drivertest.Source(rt, benchCode[rt]))
		f.Timeout = 120000
		in := drivertest.Start(b, d, f)
		drivertest.MustInvoke[int](b, in, 1)
		b.StopTimer()
		time.Sleep(200 * time.Millisecond)
		rss += in.Stats().RSSKiB
		in.Kill("benchmark")
		<-in.Done()
		b.StartTimer()
	}
	b.ReportMetric(float64(rss)/float64(b.N)/1024, "idle-MiB")
}

// BenchmarkFullBoot boots a guest afresh for each instance (no snapshot,
// no spare): kernel, init, interpreter, handler.
func BenchmarkFullBoot(b *testing.B) {
	d := newDriver(b, map[string]string{microvm.EnvSnapshots: "0", microvm.EnvSpares: "0"})
	for _, rt := range drivertest.Runtimes {
		b.Run(rt, func(b *testing.B) { startAndCall(b, d, rt) })
	}
}

// BenchmarkRestore starts Python instances as clones of a template made
// before the timer starts.
func BenchmarkRestore(b *testing.B) {
	d := sharedDriver(b)
	warm := drivertest.Start(b, d, drivertest.Function(b, runtime.Python, drivertest.Source(runtime.Python, benchCode[runtime.Python])))
	warm.Kill("template made")
	b.ResetTimer()
	startAndCall(b, d, runtime.Python)
}

// BenchmarkWarm is a call to a warm instance: the round trip over the
// virtio-serial port through the guest.
func BenchmarkWarm(b *testing.B) {
	d := sharedDriver(b)
	for _, rt := range drivertest.Runtimes {
		b.Run(rt, func(b *testing.B) {
			f := drivertest.Function(b, rt, drivertest.Source(rt, benchCode[rt]))
			f.Timeout = 120000
			in := drivertest.Start(b, d, f)
			drivertest.MustInvoke[int](b, in, 1)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				drivertest.MustInvoke[int](b, in, i)
			}
		})
	}
}
