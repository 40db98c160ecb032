package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	ctr "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"golang.org/x/sys/unix"

	"github.com/nimbusfaas/nimbus/internal/driver"
)

// container is one container and, once handed its function, an instance.
// Its lifecycle is the shared driver.Base; it adds how the daemon kills the
// container and how its end is read.
type container struct {
	*driver.Base
	d    *Driver
	id   string // the daemon's id
	name string // nimbus-<instance id>
	key  poolKey
	dir  string // on the host: io/ (FIFOs) and task/ (code)

	req, resp *os.File     // the FIFOs, held open read-write by the server
	init      atomic.Int64 // docker-init's pid on the host, once known
	pid       atomic.Int64 // the shim's pid on the host, once known
	loadedUs  atomic.Int64 // the kernel clock (monotonicUs) when its function loaded

	function string // the function's id, once handed it

	// pauseMu orders pauses, unpauses and the kill: a pause that finishes
	// after the kill would leave a paused container the daemon will not
	// kill.
	pauseMu sync.Mutex
	paused  bool // frozen between calls (docker pause)
	killed  bool
}

// oomEventWait is how long the exit of a container killed by SIGKILL waits
// for the daemon's oom event.
var oomEventWait = 10 * time.Second

var (
	_ driver.Instance = (*container)(nil)
	_ driver.Freezer  = (*container)(nil)
)

// Freeze pauses the container between calls (the cgroup freezer, through
// the daemon), so that what the handler left running uses no CPU.
func (c *container) Freeze() error {
	c.pauseMu.Lock()
	defer c.pauseMu.Unlock()
	if c.killed {
		return fmt.Errorf("docker: %s is being killed", c.name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// runc gives up freezing a cgroup (v1) whose tasks do not all stop
	// within its retries, "unable to freeze", and leaves it thawed: a
	// loaded host (tasks waiting on I/O) does that now and then. Another
	// try usually takes.
	var err error
	for try := 0; try < pauseTries; try++ {
		if _, err = c.d.cli.ContainerPause(ctx, c.id, client.ContainerPauseOptions{}); err == nil {
			c.paused = true
			return nil
		}
		if !strings.Contains(err.Error(), "unable to freeze") {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(try+1) * 100 * time.Millisecond):
		}
	}
	return fmt.Errorf("docker: pause %s: %w", c.name, err)
}

// pauseTries is how many times Freeze asks for a pause that runc could
// not complete.
const pauseTries = 3

// Thaw unpauses the container.
func (c *container) Thaw() error {
	c.pauseMu.Lock()
	defer c.pauseMu.Unlock()
	return c.unpause()
}

// unpause unpauses the container; pauseMu is held.
func (c *container) unpause() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.d.cli.ContainerUnpause(ctx, c.id, client.ContainerUnpauseOptions{}); err != nil && !cerrdefs.IsConflict(err) {
		return fmt.Errorf("docker: unpause %s: %w", c.name, err)
	}
	c.paused = false
	return nil
}

// kill kills the container, which is then removed. A failure is logged
// too: the calls that kill in the background have no one to return it to.
func (c *container) kill() error {
	if driver.IsClosed(c.Done()) || c.id == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c.pauseMu.Lock()
	c.killed = true
	if c.paused { // a frozen process takes no signal until thawed
		_ = c.unpause()
	}
	c.pauseMu.Unlock()
	_, err := c.d.cli.ContainerKill(ctx, c.id, client.ContainerKillOptions{Signal: "KILL"})
	if err == nil || cerrdefs.IsNotFound(err) || cerrdefs.IsConflict(err) {
		return nil // gone, or not running
	}
	c.d.log.Warn("kill container", "container", c.name, "function", c.function, "error", err)
	return fmt.Errorf("docker: kill %s: %w", c.name, err)
}

// discard forgets a container that never started.
func (c *container) discard() {
	c.closeFiles()
	os.RemoveAll(c.dir)
	c.d.untrack(c)
	c.Exited(driver.ExitInfo{})
}

// wait learns the container's pid, waits for it to stop, records why, and
// removes it.
func (c *container) wait() {
	ctx := context.Background()
	if r, err := c.d.cli.ContainerInspect(ctx, c.id, client.ContainerInspectOptions{}); err == nil && r.Container.State != nil {
		c.init.Store(int64(r.Container.State.Pid))
	}
	info, ok := c.waitExit(ctx)
	if !ok {
		info = driver.ExitInfo{Code: -1}
	}
	// Killed, not by Nimbus, and the state does not say OOM: the daemon's
	// "oom" event may (it can follow the exit, by over four seconds on a
	// host with every core busy: a SIGKILL crash pays that wait, an OOM
	// must not be missed). The container's cgroup, which counts OOM kills,
	// is gone by then.
	if !info.OOM && info.Signal == "SIGKILL" && c.Reason() == "" {
		// The kernel's own log first: it is written as the process is
		// killed, while the daemon's event may lag or, rarely, never come.
		if info.OOM = kernelSawOOM(c.id, int(c.pid.Load()), c.loadedUs.Load()); info.OOM {
			c.d.log.Debug("out of memory: the kernel's log says so", "container", c.name)
		} else if info.OOM = c.d.oom.saw(c.id, oomEventWait); info.OOM {
			c.d.log.Debug("out of memory: the daemon's oom event followed the exit", "container", c.name)
		}
	}
	c.d.oom.forget(c.id)
	// The response stream breaks: a call in flight learns the worker died.
	// What the worker wrote just before it exited (a load error) is read
	// first: the FIFO is open read-write here, so it never reaches EOF.
	if c.resp != nil {
		waitUnread(c.resp, time.Second)
	}
	c.closeFiles()
	c.remove()
	os.RemoveAll(c.dir)
	c.d.untrack(c)
	c.Exited(info)
}

// waitExit waits until the container is not running and reads its exit
// status. ok is false when the daemon could not tell (the container is
// gone, or the daemon stopped answering for a minute).
func (c *container) waitExit(ctx context.Context) (driver.ExitInfo, bool) {
	var failing time.Time
	for {
		w := c.d.cli.ContainerWait(ctx, c.id, client.ContainerWaitOptions{Condition: ctr.WaitConditionNotRunning})
		var err error
		select {
		case <-w.Result:
		case err = <-w.Error:
		}
		r, ierr := c.d.cli.ContainerInspect(ctx, c.id, client.ContainerInspectOptions{})
		switch {
		case ierr == nil && r.Container.State != nil && !r.Container.State.Running:
			return exitInfo(r.Container.State), true
		case ierr != nil && cerrdefs.IsNotFound(ierr):
			return driver.ExitInfo{}, false
		case ierr == nil:
			failing = time.Time{} // still running: the wait was cut short
		case failing.IsZero():
			failing = time.Now()
		case time.Since(failing) > time.Minute:
			c.d.log.Warn("docker daemon stopped answering: instance given up", "container", c.name, "error", errors.Join(err, ierr))
			return driver.ExitInfo{}, false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func exitInfo(st *ctr.State) driver.ExitInfo {
	info := driver.ExitInfo{Code: st.ExitCode, OOM: st.OOMKilled}
	if st.ExitCode > 128 && st.ExitCode < 128+65 {
		if name := unix.SignalName(unix.Signal(st.ExitCode - 128)); name != "" {
			info.Signal = name
			info.Code = -1
		}
	}
	return info
}

// Stats implements driver.Instance: the container's name, and the pid and
// resident memory of the shim in it (docker-init's child).
func (c *container) Stats() driver.Stats {
	pid := int(c.pid.Load())
	if pid == 0 && c.init.Load() > 0 {
		if kids := driver.ChildPIDs(int(c.init.Load())); len(kids) > 0 {
			pid = kids[0]
			c.pid.Store(int64(pid))
		}
	}
	return driver.Stats{ID: c.name, PID: pid, RSSKiB: driver.ResidentKiB(pid)}
}

// waitUnread waits, up to limit, until f (a pipe or FIFO) holds no bytes
// its reader has yet to read (TIOCINQ is FIONREAD on Linux).
func waitUnread(f *os.File, limit time.Duration) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		n := 0
		cerr := rc.Control(func(fd uintptr) { n, err = unix.IoctlGetInt(int(fd), unix.TIOCINQ) })
		if cerr != nil || err != nil || n == 0 {
			return
		}
	}
}
