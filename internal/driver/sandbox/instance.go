package sandbox

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/runtime"
	"golang.org/x/sys/unix"
)

// instance is one worker process.
type instance struct {
	id    string
	dir   string
	cmd   *exec.Cmd
	reqW  *os.File
	conn  *driver.Conn
	start time.Time
	log   driver.Logger

	initLogs string // what loading printed; prepended to the first response

	mu     sync.Mutex
	reason string // why Nimbus killed it; first reason wins
	exit   driver.ExitInfo
	done   chan struct{}
}

var _ driver.Instance = (*instance)(nil)

// Invoke implements driver.Instance.
func (i *instance) Invoke(ctx context.Context, req *runtime.Request) (*runtime.Response, error) {
	stop := context.AfterFunc(ctx, func() { i.Kill(killReason(ctx)) })
	defer stop()
	resp, err := i.conn.Invoke(ctx, req)
	if err == nil {
		if i.initLogs != "" {
			resp.Logs = i.initLogs + resp.Logs
			i.initLogs = ""
		}
		return resp, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if errors.Is(err, runtime.ErrFrameTooLarge) {
		i.Kill("response too large")
		return nil, err
	}
	return nil, i.died(err)
}

// died waits briefly for a worker whose stream broke to exit, kills it if
// it does not, and returns the ExitError that explains it.
func (i *instance) died(err error) error {
	select {
	case <-i.done:
	case <-time.After(time.Second):
		i.Kill("broke the protocol: " + err.Error())
		<-i.done
	}
	return &driver.ExitError{Exit: i.Exit()}
}

// broken is called when the response stream fails. A worker that closed its
// stream but lives on is of no use: give it a moment to exit, then kill it.
func (i *instance) broken(err error) {
	go func() {
		select {
		case <-i.done:
		case <-time.After(time.Second):
			i.Kill("broke the protocol")
		}
	}()
}

// Kill implements driver.Instance: it kills the worker's whole process group.
func (i *instance) Kill(reason string) error {
	i.mu.Lock()
	if i.reason == "" && !isDone(i.done) {
		i.reason = reason
	}
	i.mu.Unlock()
	err := syscall.Kill(-i.cmd.Process.Pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return nil
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
	i.mu.Lock()
	info.Reason = i.reason
	i.exit = info
	i.mu.Unlock()
	if err != nil && !errors.As(err, new(*exec.ExitError)) {
		i.log.Warn("wait for worker", "instance", i.id, "error", err)
	}
	i.reqW.Close()
	respR.Close()
	os.RemoveAll(i.dir)
	close(i.done)
}

// drain reads what the worker writes to stdout and stderr outside the
// shim's capture (subprocesses, C extensions) so it never blocks; the first
// lines go to the server's debug log.
func (i *instance) drain(r *os.File) {
	defer r.Close()
	sc := bufio.NewScanner(io.LimitReader(r, 4<<10))
	for sc.Scan() {
		i.log.Debug("worker output", "instance", i.id, "line", sc.Text())
	}
	_, _ = io.Copy(io.Discard, r)
}

// Done implements driver.Instance.
func (i *instance) Done() <-chan struct{} { return i.done }

// Exit implements driver.Instance.
func (i *instance) Exit() driver.ExitInfo {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.exit
}

// Stats implements driver.Instance.
func (i *instance) Stats() driver.Stats {
	pid := i.cmd.Process.Pid
	return driver.Stats{ID: i.id, PID: pid, RSSKiB: rssKiB(pid)}
}

func rssKiB(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

func killReason(ctx context.Context) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return "timeout"
	}
	return "cancelled"
}

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
