package engine

import (
	"context"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/metrics"
)

type rssFake struct {
	*fakeInstance
	kib int64
}

func (r rssFake) Stats() driver.Stats { return driver.Stats{RSSKiB: r.kib} }

func TestPoolCountsByState(t *testing.T) {
	p := newPool(&fn.Function{Name: "one", Driver: "sandbox", Revision: 1, MaxInstances: 3}, nil)
	ctx := context.Background()
	start := func(kib int64) *instance {
		t.Helper()
		if in, err := p.acquire(ctx, time.Second); in != nil || err != nil {
			t.Fatalf("acquire = %v, %v; want a slot to start", in, err)
		}
		if kib == 0 {
			return nil // still starting
		}
		in := &instance{Instance: rssFake{newFake(), kib}, version: 1}
		p.started(in)
		return in
	}
	want := func(w metrics.InstanceCount) {
		t.Helper()
		w.FunctionID, w.Function, w.Driver = "id", "one", "sandbox"
		if c := p.counts("id", true); c != w {
			t.Errorf("counts %+v, want %+v", c, w)
		}
	}
	start(100)
	b := start(200)
	start(0)
	p.release(b, true)
	want(metrics.InstanceCount{Idle: 1, Busy: 1, Starting: 1, RSSKiB: 300})

	if in, _ := p.acquire(ctx, time.Second); in != b {
		t.Fatal("the idle instance was not reused")
	}
	queued := make(chan error, 2)
	for range 2 {
		go func() { _, err := p.acquire(ctx, 50*time.Millisecond); queued <- err }()
	}
	deadline := time.Now().Add(10 * time.Second)
	for p.counts("id", false).Queued != 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	want(metrics.InstanceCount{Busy: 2, Starting: 1, Queued: 2, RSSKiB: 300})
	<-queued
	<-queued

	p.update(&fn.Function{Name: "renamed", Driver: "docker", Revision: 1, MaxInstances: 3})
	if c := p.counts("id", false); c.Function != "renamed" || c.Driver != "docker" || c.Queued != 0 || c.RSSKiB != 0 {
		t.Errorf("after update %+v", c)
	}
}
