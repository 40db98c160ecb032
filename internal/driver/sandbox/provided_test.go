package sandbox_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/driver/drivertest"
	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/runtimeapi"
	"github.com/nimbusfaas/nimbus/internal/runtimeapi/runtimeapitest"
)

// TestProvided runs the provided runtime's cases: the relay (this test
// binary, bound into the sandbox) serves the Runtime API on 127.0.0.1 of
// the instance's own network namespace.
func TestProvided(t *testing.T) {
	drivertest.RunProvided(t, conformanceDriver, drivertest.ProvidedOptions{
		Options:       drivertest.Options{MemoryLimit: limitsMemory(conformanceDriver(t))},
		API:           runtimeapi.DefaultAddr,
		OwnNetwork:    true,
		NetworkShared: true,
	})
}

// BenchmarkStartProvided measures a provided cold start (Start and a
// first Invoke) of the static Go test bootstrap, beside Python's, on one
// driver, each with a full CPU's weight as BenchmarkStart gives:
//
//	go test -run '^$' -bench StartProvided -benchtime 40x ./internal/driver/sandbox/
func BenchmarkStartProvided(b *testing.B) {
	h := newHarness(b)
	d := h.driver(b, nil)
	code := runtimeapitest.CodeDir(b)
	py := h.function("python", "noop", okCode["python"])
	provided := h.function(runtime.Provided, "noop", "")
	provided.Files = nil
	for _, c := range []struct {
		name string
		spec driver.InstanceSpec
	}{
		{"python", driver.InstanceSpec{Function: py}},
		{"provided", driver.InstanceSpec{Function: provided, Code: code}},
	} {
		c.spec.Function.Memory = 1769
		b.Run(c.name, func(b *testing.B) {
			b.StopTimer()
			for range b.N {
				time.Sleep(50 * time.Millisecond) // the spares refilled, as between cold starts
				b.StartTimer()
				inst, err := d.Start(context.Background(), c.spec)
				if err != nil {
					b.Fatal(err)
				}
				if _, err = inst.Invoke(context.Background(), driver.NewRequest("r", json.RawMessage(`{}`), time.Now().Add(5*time.Second).UnixMilli())); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				inst.Kill("done")
				<-inst.Done()
			}
		})
	}
}

// TestSpareRelaysOnDemand: a driver keeps no spare relays until a provided
// function starts, and then keeps them, as it keeps spare Python workers.
func TestSpareRelaysOnDemand(t *testing.T) {
	h := newHarness(t)
	d := h.driver(t, nil)
	// The interpreters' spares come up meanwhile; the relay's must not.
	deadline := time.Now().Add(time.Minute)
	for len(d.SpareWorkerPIDs(runtime.Python)) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(d.SpareWorkerPIDs(runtime.Provided)); n != 0 {
		t.Fatalf("%d spare relays before any provided function", n)
	}
	f := h.function(runtime.Provided, "first", "")
	f.Files = nil
	in, err := d.Start(context.Background(), driver.InstanceSpec{Function: f, Code: runtimeapitest.CodeDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Kill("test over"); <-in.Done() })
	for len(d.SpareWorkerPIDs(runtime.Provided)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no spare relay after a provided function started")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
