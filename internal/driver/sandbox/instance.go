package sandbox

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"golang.org/x/sys/unix"
)

// instance is one worker: an interpreter, under its init helper when
// isolated. Its lifecycle is the shared driver.Base; it adds how to kill
// the worker and how its end is read.
type instance struct {
	*driver.Base
	id          string
	dir         string
	cmd         *exec.Cmd // the helper, or the interpreter itself without isolation
	reqW        *os.File
	helper      *helper      // nil without isolation
	cg          *cgroup      // nil without cgroups
	zygoteChild *zygoteChild // the worker, when the Python zygote forked it
	start       time.Time
	log         driver.Logger

	drained chan struct{} // closed when drain has seen the end of the output
	tailMu  sync.Mutex
	tail    []byte // the last bytes of the raw output

	setupMu sync.Mutex
	setup   string // why the helper could not build the sandbox

	// freezeMu orders freezes, thaws and the kill: a freeze that finishes
	// after a kill's signal would hold the signal (the v1 freezer does)
	// and the worker forever.
	freezeMu sync.Mutex
	frozen   bool
	killed   bool
}

var (
	_ driver.Instance = (*instance)(nil)
	_ driver.Freezer  = (*instance)(nil)
)

// Freeze freezes every process of the instance through its cgroup.
func (i *instance) Freeze() error {
	if i.cg == nil {
		return fmt.Errorf("sandbox: an instance without a cgroup: %w", driver.ErrNotSupported)
	}
	i.freezeMu.Lock()
	defer i.freezeMu.Unlock()
	if i.killed {
		return errors.New("sandbox: the instance is being killed")
	}
	if err := i.cg.freeze(); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	i.frozen = true
	return nil
}

// Thaw lets the instance's processes run again.
func (i *instance) Thaw() error {
	if i.cg == nil {
		return fmt.Errorf("sandbox: an instance without a cgroup: %w", driver.ErrNotSupported)
	}
	i.freezeMu.Lock()
	defer i.freezeMu.Unlock()
	if err := i.cg.thaw(); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	i.frozen = false
	return nil
}

// kill kills the worker. Isolated, killing the helper (PID 1 of the
// instance's PID namespace) kills everything in it; the process group is
// killed too, for the unisolated worker.
func (i *instance) kill() error {
	i.freezeMu.Lock()
	i.killed = true
	if i.frozen { // under the v1 freezer, a signal waits for a thaw
		_ = i.cg.thaw()
		i.frozen = false
	}
	i.freezeMu.Unlock()
	pid := i.cmd.Process.Pid
	err := syscall.Kill(pid, syscall.SIGKILL)
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// startError is what Start returns when loading the handler failed with
// err: a worker that died because its sandbox could not be built says so.
func (i *instance) startError(err error) error {
	if !errors.As(err, new(*driver.ExitError)) {
		return err
	}
	if setup := i.setupError(); setup != "" {
		return fmt.Errorf("sandbox: set up instance: %s: %w", setup, fn.ErrUnavailable)
	}
	return err
}

// wait reaps the worker, records why it stopped, and cleans up after it.
func (i *instance) wait(respR *os.File) {
	err := i.cmd.Wait()
	// Whatever the worker left in its process group goes with it.
	_ = syscall.Kill(-i.cmd.Process.Pid, syscall.SIGKILL)
	info := driver.ExitInfo{Code: i.cmd.ProcessState.ExitCode()}
	if ws, ok := i.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		info.Signal = unix.SignalName(ws.Signal())
		info.Code = -1
	}
	var setup string
	if i.helper != nil {
		// The helper reports how the interpreter ended; without a report
		// it was killed (by Nimbus, or before the interpreter started).
		var st parsedStatus
		select {
		case <-i.helper.exited:
			st = parseStatus(i.helper.status)
		case <-time.After(time.Second):
		}
		setup = st.err
		if st.exit != nil {
			info.Code, info.Signal = st.exit.Code, st.exit.Signal
		}
	}
	if i.zygoteChild != nil {
		// The zygote, not the init shell, is the worker's parent.
		i.zygoteExit(&info)
	}
	select {
	case <-i.drained:
	case <-time.After(500 * time.Millisecond):
	}
	if i.cg != nil {
		info.OOM = i.cg.oomKills() > 0
		i.cg.remove()
	}
	i.tailMu.Lock()
	heapOOM := bytes.Contains(i.tail, []byte("JavaScript heap out of memory"))
	i.tailMu.Unlock()
	if !info.OOM && info.Signal == "SIGABRT" && heapOOM {
		// Node stops itself at its heap limit (--max-old-space-size, set
		// to the function's memory) before the kernel has to.
		info.OOM = true
	}
	i.setupMu.Lock()
	i.setup = setup
	i.setupMu.Unlock()
	if err != nil && !errors.As(err, new(*exec.ExitError)) {
		i.log.Warn("wait for worker", "instance", i.id, "error", err)
	}
	if setup != "" {
		i.log.Warn("sandbox set-up failed", "instance", i.id, "error", setup)
	}
	i.reqW.Close()
	// The worker's last frames may still be in the pipe, unread: the
	// stream ends at EOF once every writer is gone (the group was killed
	// above). The bound is for a writer that got away.
	select {
	case <-i.StreamEnded():
	case <-time.After(5 * time.Second):
	}
	respR.Close()
	os.RemoveAll(i.dir)
	i.Exited(info)
}

func (i *instance) setupError() string {
	i.setupMu.Lock()
	defer i.setupMu.Unlock()
	return i.setup
}

// drain reads what the worker writes to stdout and stderr outside the
// shim's capture (subprocesses, C extensions, the runtime's own fatal
// errors) so it never blocks; the first lines go to the server's debug log
// and the last bytes are kept for wait.
func (i *instance) drain(r *os.File) {
	defer close(i.drained)
	defer r.Close()
	sc := bufio.NewScanner(io.LimitReader(r, 4<<10))
	for sc.Scan() {
		i.log.Debug("worker output", "instance", i.id, "line", sc.Text())
		i.addTail(append(sc.Bytes(), '\n'))
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		i.addTail(buf[:n])
		if err != nil {
			return
		}
	}
}

// addTail keeps the last 2 KiB of what the worker printed.
func (i *instance) addTail(b []byte) {
	const keep = 2 << 10
	i.tailMu.Lock()
	defer i.tailMu.Unlock()
	i.tail = append(i.tail, b...)
	if len(i.tail) > keep {
		i.tail = append(i.tail[:0], i.tail[len(i.tail)-keep:]...)
	}
}

// Stats implements driver.Instance: the helper's pid (the worker's without
// isolation) and the memory of the whole instance.
func (i *instance) Stats() driver.Stats {
	pid := i.cmd.Process.Pid
	st := driver.Stats{ID: i.id, PID: pid}
	if i.cg != nil {
		st.RSSKiB = i.cg.memoryKiB()
		return st
	}
	st.RSSKiB = driver.ResidentKiB(pid)
	if i.helper != nil {
		for _, c := range driver.ChildPIDs(pid) {
			st.RSSKiB += driver.ResidentKiB(c)
		}
	}
	return st
}
