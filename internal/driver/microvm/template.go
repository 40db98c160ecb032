package microvm

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
)

// template is a snapshot of a booted guest whose agent waits for its
// function: RAM in a file under the driver's run directory, device state in
// another. Clones map the RAM file privately (copy-on-write) and load the
// device state: they resume where the template stopped.
type template struct {
	art     *artifacts // what it booted: its clones must boot the same
	runtime string
	fnMemMB int
	memMB   int
	ram     string
	state   string

	ready chan struct{} // closed when made, or failed
	err   error         // why it could not be made
	at    time.Time     // when it was made or failed
	boot  time.Duration // boot to a waiting agent
	snap  time.Duration // saving the device state
}

// templateRetry is how long a failed template is not tried again; instances
// boot afresh meanwhile.
const templateRetry = time.Minute

// template returns the ready template for rt and the function memory
// fnMemMB, making it first if needed. Making it does not depend on ctx:
// a caller that gives up leaves it to the next.
func (d *Driver) template(ctx context.Context, a *artifacts, rt string, fnMemMB int) (*template, error) {
	key := rt + "-" + strconv.Itoa(fnMemMB)
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, errClosed
	}
	t := d.templates[key]
	switch {
	case t == nil:
	case driver.IsClosed(t.ready) && t.err != nil && time.Since(t.at) > templateRetry:
		t = nil
	case driver.IsClosed(t.ready) && t.art != a:
		// The artifacts were rebuilt: clones of the old template would
		// boot files that may be gone.
		os.Remove(t.ram)
		os.Remove(t.state)
		t = nil
	}
	if t == nil {
		t = &template{
			art:     a,
			runtime: rt,
			fnMemMB: fnMemMB,
			memMB:   fnMemMB + d.opts.overheadMB,
			ready:   make(chan struct{}),
		}
		d.templates[key] = t
		go d.makeTemplate(t, key)
	}
	d.mu.Unlock()
	select {
	case <-t.ready:
		return t, t.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// makeTemplate boots the template VM, lets its agent prepare, saves its
// device state and stops it.
func (d *Driver) makeTemplate(t *template, key string) {
	defer close(t.ready)
	defer func() { t.at = time.Now() }()
	run, err := d.runDir()
	if err != nil {
		t.err = err
		return
	}
	tdir := filepath.Join(run, "templates")
	if err := os.MkdirAll(tdir, 0o700); err != nil {
		t.err = err
		return
	}
	t.ram = filepath.Join(tdir, key+".ram")
	t.state = filepath.Join(tdir, key+".state")
	ctx, cancel := context.WithTimeout(context.Background(), d.opts.bootTimeout)
	defer cancel()
	t0 := time.Now()
	v, conn, err := d.bootPrepared(ctx, t.art, vmSpec{
		runtime:  t.runtime,
		memMB:    t.memMB,
		fnMemMB:  t.fnMemMB,
		ramFile:  t.ram,
		shareRAM: true,
	})
	if err != nil {
		t.err = fmt.Errorf("boot template: %w", err)
		d.log.Warn("microVM template failed: instances boot afresh", "template", key, "error", err)
		os.Remove(t.ram)
		return
	}
	defer d.forget(v)
	defer conn.Close()
	t.boot = time.Since(t0)
	t1 := time.Now()
	if err := d.snapshot(ctx, v, t.state); err != nil {
		t.err = v.failure("snapshot template", err)
		d.log.Warn("microVM template failed: instances boot afresh", "template", key, "error", t.err)
		v.stop()
		os.Remove(t.ram)
		os.Remove(t.state)
		return
	}
	t.snap = time.Since(t1)
	v.stop()
	d.log.Info("microVM template ready", "template", key, "boot", t.boot.Round(time.Millisecond), "snapshot", t.snap.Round(time.Millisecond))
}

// snapshot saves v's device state to path (its RAM is in its shared file)
// and leaves it paused.
func (d *Driver) snapshot(ctx context.Context, v *vm, path string) error {
	q, err := v.qmp(ctx)
	if err != nil {
		return err
	}
	defer q.close()
	tmp := path + ".tmp"
	err = q.withDeadline(ctx, func() error {
		if err := q.setIgnoreShared(); err != nil {
			return err
		}
		// The file gets its name only once cat has written all of it.
		if _, err := q.exec("migrate", map[string]any{"uri": "exec:cat > " + tmp + " && mv " + tmp + " " + path}); err != nil {
			return err
		}
		return q.waitMigration(ctx)
	})
	if err != nil {
		return err
	}
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-v.exited:
			return errVMExited
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// restore starts a clone of t and waits until it runs.
func (d *Driver) restore(ctx context.Context, t *template) (*vm, net.Conn, error) {
	v, err := d.startVM(t.art, vmSpec{
		runtime:  t.runtime,
		memMB:    t.memMB,
		fnMemMB:  t.fnMemMB,
		ramFile:  t.ram,
		incoming: true,
	})
	if err != nil {
		return nil, nil, err
	}
	fail := func(what string, err error) (*vm, net.Conn, error) {
		err = v.failure(what, err)
		v.stop()
		d.forget(v)
		return nil, nil, err
	}
	conn, err := v.connectSerial(ctx)
	if err != nil {
		return fail("connect to the clone", err)
	}
	q, err := v.qmp(ctx)
	if err != nil {
		conn.Close()
		return fail("restore", err)
	}
	defer q.close()
	err = q.withDeadline(ctx, func() error {
		if err := q.setIgnoreShared(); err != nil {
			return err
		}
		if _, err := q.exec("migrate-incoming", map[string]any{"uri": "exec:cat " + t.state}); err != nil {
			return err
		}
		return q.waitRunning(ctx)
	})
	if err != nil {
		conn.Close()
		return fail("restore", err)
	}
	return v, conn, nil
}
