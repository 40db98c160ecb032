package microvm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
	"golang.org/x/sys/unix"
)

// instance is one VM serving one function version.
type instance struct {
	d      *Driver
	vm     *vm
	serial net.Conn
	conn   *driver.Conn
	cloned bool
	start  time.Time

	initLogs driver.InitLogs

	mu     sync.Mutex
	reason string // why Nimbus killed it; first reason wins
	exit   driver.ExitInfo
	done   chan struct{}
}

var _ driver.Instance = (*instance)(nil)

func (d *Driver) newInstance(v *vm, serial net.Conn, cloned bool) *instance {
	i := &instance{d: d, vm: v, serial: serial, cloned: cloned, start: time.Now(), done: make(chan struct{})}
	// The worker's end does not close the port on the host's side: the
	// init's report on the console does, by stopping the VM.
	v.setOnAgent(func() { v.kill() })
	go i.wait()
	return i
}

// setupFrame is the agent's last frame before the runtime protocol starts.
type setupFrame struct {
	Type    string            `json:"type"` // "setup"
	Seed    string            `json:"seed"` // hex; reseeds the guest kernel's RNG
	Files   map[string]string `json:"files"`
	Env     map[string]string `json:"env"`
	TaskDir string            `json:"taskDir"`
	UID     int               `json:"uid"`
	GID     int               `json:"gid"`
}

// setup hands the agent the function: its code, its environment and fresh
// randomness (a clone has its template's); then it answers the agent's
// clock exchange.
func (i *instance) setup(ctx context.Context, f *fn.Function) error {
	var seed [64]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return err
	}
	fr := setupFrame{
		Type:    "setup",
		Seed:    hex.EncodeToString(seed[:]),
		Files:   f.Files,
		Env:     Env(f),
		TaskDir: guestTaskDir,
		UID:     guestUID,
		GID:     guestGID,
	}
	if err := runtime.WriteFrame(i.serial, fr); err != nil {
		return fmt.Errorf("send the function to the guest: %w", err)
	}
	if err := agentHello(ctx, i.serial, "clock"); err != nil {
		return err
	}
	if err := runtime.WriteFrame(i.serial, map[string]any{"type": "clock", "timeNs": time.Now().UnixNano()}); err != nil {
		return fmt.Errorf("set the guest's clock: %w", err)
	}
	// From here on the port carries the runtime protocol.
	i.conn = driver.NewConn(i.serial, i.serial, nil)
	return nil
}

// Invoke implements driver.Instance.
func (i *instance) Invoke(ctx context.Context, req *runtime.Request) (*runtime.Response, error) {
	return driver.Invoke(ctx, i.conn, req, &i.initLogs, func(r string) { i.Kill(r) }, i.died)
}

// died waits for a VM whose stream broke to stop, stops it if it does not,
// and returns the ExitError that explains it.
func (i *instance) died(err error) error {
	select {
	case <-i.done:
	case <-time.After(5 * time.Second):
		i.Kill("broke the protocol: " + err.Error())
		<-i.done
	}
	return &driver.ExitError{Exit: i.Exit()}
}

// failStart turns a failed setup or init into the error Start returns, and
// makes sure the VM is gone.
func (i *instance) failStart(ctx context.Context, err error, logs string) error {
	var rtErr *runtime.Error
	switch {
	case errors.As(err, &rtErr):
		i.Kill("handler failed to load")
		<-i.done
		return &driver.InitError{Err: rtErr, Logs: logs}
	case ctx.Err() != nil:
		i.Kill(driver.KillReason(ctx))
		<-i.done
		return ctx.Err()
	}
	err = i.died(err)
	i.d.log.Warn("microVM worker died while starting", "vm", i.vm.id, "error", err, "console", i.vm.consoleTail(12))
	return err
}

// Kill implements driver.Instance: it kills the VM.
func (i *instance) Kill(reason string) error {
	i.mu.Lock()
	if i.reason == "" && !isClosed(i.done) {
		i.reason = reason
	}
	i.mu.Unlock()
	i.vm.kill()
	return nil
}

// wait waits for QEMU to exit, records why the instance stopped and cleans
// up after it.
func (i *instance) wait() {
	v := i.vm
	<-v.exited
	select {
	case <-v.consoleEOF:
	case <-time.After(2 * time.Second):
	}
	i.serial.Close()
	ps := v.cmd.ProcessState
	info := driver.ExitInfo{Code: ps.ExitCode()}
	v.mu.Lock()
	agent, oomSeen, heapOOM := v.agent, v.oomSeen, v.heapOOM
	v.mu.Unlock()
	switch {
	case agent != nil:
		// The worker ended in the guest: its status, as the shell saw it.
		info.Code = agent.status
		if agent.status > 128 {
			info.Code, info.Signal = -1, unix.SignalName(syscall.Signal(agent.status-128))
		}
		info.OOM = agent.oom || oomSeen || (heapOOM && agent.status == 134)
	default:
		info.OOM = oomSeen
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			info.Code = -1
		}
	}
	i.mu.Lock()
	info.Reason = i.reason
	if info.Reason == "" && agent == nil && !info.OOM {
		info.Reason = "virtual machine stopped"
		i.d.log.Warn("microVM stopped by itself", "vm", v.id, "console", v.consoleTail(6))
	}
	i.exit = info
	i.mu.Unlock()
	os.RemoveAll(v.dir)
	i.d.forget(v)
	close(i.done)
}

// Done implements driver.Instance.
func (i *instance) Done() <-chan struct{} { return i.done }

// Exit implements driver.Instance.
func (i *instance) Exit() driver.ExitInfo {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.exit
}

// Stats implements driver.Instance: QEMU's pid and resident memory, which
// counts the guest's RAM as far as the guest has touched it.
func (i *instance) Stats() driver.Stats {
	pid := i.vm.cmd.Process.Pid
	return driver.Stats{ID: i.vm.id, PID: pid, RSSKiB: rssKiB(pid)}
}

// Cloned reports whether the instance was restored from a snapshot.
func (i *instance) Cloned() bool { return i.cloned }

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
