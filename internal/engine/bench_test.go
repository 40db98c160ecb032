package engine

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/fn"
)

// BenchmarkPoolAcquireRelease is the pool's share of a warm call.
func BenchmarkPoolAcquireRelease(b *testing.B) {
	p := newPool(&fn.Function{Revision: 1, MaxInstances: 10, Concurrency: 1}, nil)
	ctx := context.Background()
	p.acquire(ctx, time.Second)
	in := &instance{Instance: newFake(), version: 1}
	p.started(in)
	p.release(in, true)
	for b.Loop() {
		in, _ := p.acquire(ctx, time.Second)
		p.release(in, true)
	}
}

// BenchmarkInvokeWarm is the engine's share of a warm call: pool, record,
// metrics, with an instance that answers at once. Parallel, as calls are.
func BenchmarkInvokeWarm(b *testing.B) {
	d := &countingDriver{}
	e := New(Config{Drivers: map[string]driver.Driver{fn.DefaultDriver: d}, Records: nopRecords{}, FlushInterval: 10 * time.Millisecond})
	e.Start(context.Background())
	defer e.Close(context.Background())
	f := &fn.Function{ID: "f", Name: "f", Driver: fn.DefaultDriver, Revision: 1, Timeout: 1000, MaxInstances: 64, Concurrency: 1}
	ev := json.RawMessage(`{"k":"v"}`)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.Invoke(context.Background(), f, ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}
