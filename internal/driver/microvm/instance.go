package microvm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
	"golang.org/x/sys/unix"
)

// instance is one VM serving one function version. Its lifecycle is the
// shared driver.Base; it adds how to kill the VM and how its end is read.
type instance struct {
	*driver.Base
	d      *Driver
	vm     *vm
	serial net.Conn
	cloned bool
	start  time.Time
}

var (
	_ driver.Instance = (*instance)(nil)
	_ driver.Freezer  = (*instance)(nil)
)

// Freeze stops the VM's QEMU process (SIGSTOP), vCPUs and all, between
// calls: what the handler left running uses no CPU. Not QMP's "stop",
// which also stops the guest's clock: after a thaw the guest would lag the
// host by as long as it was frozen. A stopped process still dies of
// SIGKILL, so Kill needs no thaw.
func (i *instance) Freeze() error {
	return i.signal(syscall.SIGSTOP)
}

// Thaw lets the VM run again (SIGCONT); the guest's clock catches up.
func (i *instance) Thaw() error {
	return i.signal(syscall.SIGCONT)
}

func (i *instance) signal(sig syscall.Signal) error {
	if i.vm.isExited() {
		return fmt.Errorf("microvm: the VM has stopped")
	}
	if err := syscall.Kill(-i.vm.cmd.Process.Pid, sig); err != nil {
		return fmt.Errorf("microvm: %v the VM: %w", sig, err)
	}
	return nil
}

func (d *Driver) newInstance(v *vm, serial net.Conn, cloned bool) *instance {
	i := &instance{d: d, vm: v, serial: serial, cloned: cloned, start: time.Now()}
	// A guest whose stream broke has five seconds to be seen stopping.
	i.Base = driver.NewBase(func() error { v.kill(); return nil }, 5*time.Second)
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
		Env:     driver.FunctionEnv(f, guestTaskDir),
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
	i.Connect(i.serial, i.serial)
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
	if agent == nil && !info.OOM {
		// Unless Nimbus killed it, whose reason then stands.
		info.Reason = "virtual machine stopped"
		if i.Reason() == "" {
			i.d.log.Warn("microVM stopped by itself", "vm", v.id, "console", v.consoleTail(6))
		}
	}
	os.RemoveAll(v.dir)
	i.d.forget(v)
	i.Exited(info)
}

// Stats implements driver.Instance: QEMU's pid and resident memory, which
// counts the guest's RAM as far as the guest has touched it.
func (i *instance) Stats() driver.Stats {
	pid := i.vm.cmd.Process.Pid
	return driver.Stats{ID: i.vm.id, PID: pid, RSSKiB: driver.ResidentKiB(pid)}
}

// Cloned reports whether the instance was restored from a snapshot.
func (i *instance) Cloned() bool { return i.cloned }

// startError is what Start returns when setting up the guest or loading
// the handler failed with err (FailStart's verdict): the VM is gone before
// Start returns, and a guest that died says why on its console.
func (i *instance) startError(err error) error {
	<-i.Done()
	if errors.As(err, new(*driver.ExitError)) {
		i.d.log.Warn("microVM worker died while starting", "vm", i.vm.id, "error", err, "console", i.vm.consoleTail(12))
	}
	return err
}
