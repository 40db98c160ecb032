package microvm

import (
	"context"
	"net"
	"strconv"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
)

// A runtime that cannot be cloned from a snapshot (Node) boots each guest
// afresh. To keep that boot off a first call's path, the driver keeps one
// guest booted ahead per runtime and memory size in use: booted, its agent
// holding the shim and waiting for a function, exactly as a guest booted on
// demand would be (a fresh boot: nothing is shared with other guests). A
// Start takes it, waiting for it if it is still booting (it started
// earlier than a boot of the Start's own would), and once the Start has
// its guest a replacement boots in the background. A size unused for
// spareIdle has its spare stopped.

// spareIdle is how long a spare guest waits for a Start before it is
// stopped.
const spareIdle = 10 * time.Minute

// spare is a booted guest waiting for a function, or one booting.
type spare struct {
	ready    chan struct{} // closed when booted (or failed)
	v        *vm
	conn     net.Conn
	err      error
	lastWant time.Time // when a Start last wanted this size
}

func spareKey(s vmSpec) string { return s.runtime + "-" + strconv.Itoa(s.fnMemMB) }

// takeSpare claims the spare guest for s's runtime and size, waiting for
// it to finish booting; it returns nil when there is none or it failed.
func (d *Driver) takeSpare(ctx context.Context, s vmSpec) (*vm, net.Conn) {
	key := spareKey(s)
	d.mu.Lock()
	sp := d.spares[key]
	delete(d.spares, key)
	d.mu.Unlock()
	if sp == nil {
		return nil, nil
	}
	select {
	case <-sp.ready:
	case <-ctx.Done():
		// Leave it for the next Start.
		d.mu.Lock()
		if d.spares[key] == nil && !d.closed {
			d.spares[key] = sp
			sp = nil
		}
		d.mu.Unlock()
		if sp != nil {
			go func() { <-sp.ready; d.discard(sp) }()
		}
		return nil, nil
	}
	if sp.err != nil || sp.v.isExited() {
		d.discard(sp)
		return nil, nil
	}
	return sp.v, sp.conn
}

// refillSpare starts booting a spare guest for s's runtime and size unless
// one is there, and stops spares of sizes no Start wanted for spareIdle.
func (d *Driver) refillSpare(a *artifacts, s vmSpec) {
	key := spareKey(s)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	for k, sp := range d.spares {
		if k != key && time.Since(sp.lastWant) > spareIdle && driver.IsClosed(sp.ready) {
			delete(d.spares, k)
			go d.discard(sp)
		}
	}
	sp := d.spares[key]
	if sp == nil {
		sp = &spare{ready: make(chan struct{})}
		d.spares[key] = sp
		go d.bootSpare(sp, a, s)
	}
	sp.lastWant = time.Now()
}

// bootSpare boots a spare guest.
func (d *Driver) bootSpare(sp *spare, a *artifacts, s vmSpec) {
	ctx, cancel := context.WithTimeout(context.Background(), d.opts.bootTimeout)
	defer cancel()
	v, conn, err := d.bootPrepared(ctx, a, s)
	d.mu.Lock()
	sp.v, sp.conn, sp.err = v, conn, err
	close(sp.ready)
	closed := d.closed
	d.mu.Unlock()
	if err != nil {
		if !closed {
			d.log.Warn("microVM spare guest failed to boot", "runtime", s.runtime, "error", err)
		}
		return
	}
	if closed {
		d.discard(sp)
	}
}

// discard stops a spare guest.
func (d *Driver) discard(sp *spare) {
	if sp.v == nil {
		return
	}
	if sp.conn != nil {
		sp.conn.Close()
	}
	sp.v.stop()
	d.forget(sp.v)
}
