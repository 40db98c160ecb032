package docker

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moby/moby/client"
)

// oomWatch follows the daemon's "oom" events for this driver's containers.
// A container's State.OOMKilled is not enough: the daemon sets it from the
// exit event, and when the exit is handled before the OOM notice (cgroup
// v1 here) it stays false although an "oom" event follows.
type oomWatch struct {
	d    *Driver
	once sync.Once

	events atomic.Int64 // seen since the start

	mu   sync.Mutex
	seen map[string]bool // container ids
	news chan struct{}   // closed and replaced when seen grows
}

func newOOMWatch(d *Driver) *oomWatch {
	return &oomWatch{d: d, seen: map[string]bool{}, news: make(chan struct{})}
}

// start subscribes once, waiting up to a few seconds for the subscription
// so that containers started after it have their events seen.
func (w *oomWatch) start() {
	w.once.Do(func() {
		subscribed := make(chan struct{})
		w.d.mu.Lock()
		if w.d.closed {
			w.d.mu.Unlock()
			return
		}
		w.d.bg.Add(1)
		w.d.mu.Unlock()
		go func() {
			defer w.d.bg.Done()
			w.run(subscribed)
		}()
		select {
		case <-subscribed:
		case <-time.After(5 * time.Second):
		}
	})
}

func (w *oomWatch) run(subscribed chan struct{}) {
	ctx := w.d.ctx
	since := ""
	for ctx.Err() == nil {
		t0 := time.Now()
		res := w.d.cli.Events(ctx, client.EventsListOptions{
			Since: since,
			Filters: make(client.Filters).
				Add("type", "container").
				Add("event", "oom").
				Add("label", labelOwner+"="+w.d.owner),
		})
		if subscribed != nil {
			close(subscribed)
			subscribed = nil
		}
	stream:
		for {
			select {
			case m, ok := <-res.Messages:
				if !ok {
					break stream
				}
				w.mark(m.Actor.ID)
			case err := <-res.Err:
				if err != nil && ctx.Err() == nil {
					w.d.log.Debug("docker events stream ended", "error", err)
				}
				break stream
			}
		}
		// Resume where the stream broke: events in between are replayed.
		since = strconv.FormatInt(t0.Add(-time.Second).Unix(), 10)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (w *oomWatch) mark(id string) {
	w.events.Add(1)
	w.mu.Lock()
	if !w.seen[id] {
		w.seen[id] = true
		close(w.news)
		w.news = make(chan struct{})
	}
	w.mu.Unlock()
}

// saw reports whether container id ran out of memory, waiting up to
// within for the event to arrive; it forgets the container.
func (w *oomWatch) saw(id string, within time.Duration) bool {
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		seen, news := w.seen[id], w.news
		if seen {
			delete(w.seen, id)
		}
		w.mu.Unlock()
		if seen {
			return true
		}
		select {
		case <-news:
		case <-deadline.C:
			return false
		}
	}
}

// forget drops what is known of container id.
func (w *oomWatch) forget(id string) {
	w.mu.Lock()
	delete(w.seen, id)
	w.mu.Unlock()
}
