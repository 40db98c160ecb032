package microvm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
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

// setupFrame is the first of the agent's last frames before the runtime
// protocol starts: the function's environment and where its code and
// layers go. fileFrames follow with the code and layers, then a
// filesDoneFrame.
type setupFrame struct {
	Type    string            `json:"type"` // "setup"
	Seed    string            `json:"seed"` // hex; reseeds the guest kernel's RNG
	Env     map[string]string `json:"env"`
	TaskDir string            `json:"taskDir"`
	Layers  []string          `json:"layers,omitempty"` // the guest's directory of each layer, in order
	UID     int               `json:"uid"`
	GID     int               `json:"gid"`
}

// fileFrame is one entry of the function's code or of a layer: a
// directory, a file (or the next piece of one) or a symbolic link. The
// agent writes it below Dir, which must be the task directory or a layer's
// of the setup frame, as root: the worker's user cannot write there.
type fileFrame struct {
	Type   string `json:"type"`             // "file"
	Dir    string `json:"dir"`              // the guest directory it goes in
	Path   string `json:"path"`             // slash-separated, relative to Dir
	Kind   string `json:"kind"`             // "dir", "file" or "symlink"
	Mode   uint32 `json:"mode,omitempty"`   // a file's permission bits
	Data   []byte `json:"data,omitempty"`   // a file's content or, with Append, its next piece (base64 in JSON)
	Append bool   `json:"append,omitempty"` // Data continues the file of the frame before
	Link   string `json:"link,omitempty"`   // a symbolic link's target
}

// filesDoneFrame follows the last fileFrame.
type filesDoneFrame struct {
	Type string `json:"type"` // "files-done"
}

// fileChunk is the most of a file's content one frame carries: files of
// any size go over the port in pieces, and neither side holds a frame of
// more than a couple of megabytes.
const fileChunk = 1 << 20

// setup hands the agent the function: its code, its layers, its
// environment and fresh randomness (a clone has its template's); then it
// answers the agent's clock exchange.
func (i *instance) setup(ctx context.Context, spec driver.InstanceSpec) error {
	f := spec.Function
	var seed [64]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = i.serial.SetWriteDeadline(time.Now()) })
	defer stop()
	fr := setupFrame{
		Type:    "setup",
		Seed:    hex.EncodeToString(seed[:]),
		Env:     driver.FunctionEnv(f, guestTaskDir),
		TaskDir: guestTaskDir,
		Layers:  spec.LayerDirs(),
		UID:     guestUID,
		GID:     guestGID,
	}
	send := func(v any) error { return runtime.WriteFrame(i.serial, v) }
	err := send(fr)
	if err == nil {
		if spec.Code != "" {
			err = sendTree(send, spec.Code, guestTaskDir)
		} else {
			err = sendFiles(send, f.Files, guestTaskDir)
		}
	}
	for n, l := range spec.Layers {
		if err == nil {
			err = sendTree(send, l, driver.LayerDir(n))
		}
	}
	if err == nil {
		err = send(filesDoneFrame{Type: "files-done"})
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("send the function to the guest: %w", err)
	}
	_ = i.serial.SetWriteDeadline(time.Time{})
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

// sendTree sends the tree src, for the guest directory dir, as fileFrames:
// its directories, its regular files with their permission bits, in pieces
// of fileChunk, and its symbolic links as links.
func sendTree(send func(any) error, src, dir string) error {
	return filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		fr := fileFrame{Type: "file", Dir: dir, Path: filepath.ToSlash(rel)}
		switch t := e.Type(); {
		case t.IsDir():
			fr.Kind = "dir"
			return send(fr)
		case t&fs.ModeSymlink != 0:
			fr.Kind = "symlink"
			if fr.Link, err = os.Readlink(p); err != nil {
				return err
			}
			return send(fr)
		case t.IsRegular():
			fi, err := e.Info()
			if err != nil {
				return err
			}
			fr.Kind, fr.Mode = "file", uint32(fi.Mode().Perm())
			file, err := os.Open(p)
			if err != nil {
				return err
			}
			defer file.Close()
			return sendContent(send, fr, file)
		default:
			return fmt.Errorf("%s: a %v is neither a file, a directory nor a symbolic link", p, t)
		}
	})
}

// sendFiles sends files given by hand (path → content), for the guest
// directory dir, as fileFrames.
func sendFiles(send func(any) error, files map[string]string, dir string) error {
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		fr := fileFrame{Type: "file", Dir: dir, Path: p, Kind: "file", Mode: 0o644}
		if err := sendContent(send, fr, strings.NewReader(files[p])); err != nil {
			return err
		}
	}
	return nil
}

// sendContent sends fr with r's content, in as many frames as it takes
// (one for an empty file).
func sendContent(send func(any) error, fr fileFrame, r io.Reader) error {
	buf := make([]byte, fileChunk)
	for {
		n, err := io.ReadFull(r, buf)
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return err
		}
		if n > 0 || !fr.Append {
			fr.Data = buf[:n]
			if serr := send(fr); serr != nil {
				return serr
			}
			fr.Append = true
		}
		if err != nil { // the end
			return nil
		}
	}
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
