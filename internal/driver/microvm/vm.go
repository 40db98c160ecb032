package microvm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// vmSpec is one QEMU process to start.
type vmSpec struct {
	runtime  string
	memMB    int    // guest RAM
	fnMemMB  int    // the function's memory, told to the guest
	ramFile  string // RAM in this file (templates and clones); "" for anonymous RAM
	shareRAM bool   // map ramFile shared (a template) or private, copy-on-write (a clone)
	incoming bool   // wait for a migration stream (a clone)
}

// vm is a running QEMU process and its console.
type vm struct {
	id   string
	dir  string // holds its sockets; removed when it exits
	cmd  *exec.Cmd
	log  logger
	kill func() // kills the process group

	exited     chan struct{} // closed when QEMU has been reaped
	consoleEOF chan struct{} // closed when the console has been read to its end

	mu      sync.Mutex
	tail    []byte     // the console's last bytes
	agent   *agentExit // the init's report of the worker's end
	oomSeen bool       // the guest kernel's OOM killer killed a process
	heapOOM bool       // Node stopped at its heap limit
	onAgent func()     // called once when the agent reports the worker's end
}

// agentExit is what the guest init says when the worker exits.
type agentExit struct {
	status int
	oom    bool
}

type logger interface {
	Debug(msg string, args ...any)
	Warn(msg string, args ...any)
}

// startVM starts QEMU for spec with the artifacts a, in dir.
func startVM(a *artifacts, ac accel, qemu, dir string, s vmSpec, log logger) (*vm, error) {
	image, ok := a.runtimes[s.runtime]
	if !ok {
		return nil, fmt.Errorf("no %s runtime image", s.runtime)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	machine := "microvm,x-option-roms=off,isa-serial=on,rtc=on"
	args := []string{
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-smp", "1", "-m", strconv.Itoa(s.memMB) + "M",
		"-serial", "stdio",
		"-kernel", a.kernel, "-initrd", a.initrd,
		"-append", kernelCmdline(ac, s.runtime, s.fnMemMB),
		"-drive", "if=none,id=rt,format=raw,readonly=on,file=" + image,
		"-device", "virtio-blk-device,drive=rt",
		"-device", "virtio-serial-device",
		"-chardev", "socket,id=ch,server=on,wait=off,path=" + filepath.Join(dir, "serial.sock"),
		"-device", "virtserialport,chardev=ch,name=nimbus",
		"-qmp", "unix:" + filepath.Join(dir, "qmp.sock") + ",server=on,wait=off",
	}
	args = append(args, ac.qemuArgs()...)
	if s.ramFile != "" {
		share := "off"
		if s.shareRAM {
			share = "on"
		}
		machine += ",memory-backend=mem"
		args = append(args, "-object", fmt.Sprintf("memory-backend-file,id=mem,size=%dM,mem-path=%s,share=%s", s.memMB, s.ramFile, share))
	}
	if s.incoming {
		args = append(args, "-incoming", "defer")
	}
	args = append([]string{"-M", machine}, args...)

	cmd := exec.Command(qemu, args...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		out.Close()
		w.Close()
		return nil, fmt.Errorf("start %s: %w", qemu, err)
	}
	w.Close()
	v := &vm{
		id:         filepath.Base(dir),
		dir:        dir,
		cmd:        cmd,
		log:        log,
		exited:     make(chan struct{}),
		consoleEOF: make(chan struct{}),
	}
	pid := cmd.Process.Pid
	v.kill = func() {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	go v.readConsole(out)
	go func() {
		_ = cmd.Wait()
		v.kill() // whatever QEMU started (a migration's cat) goes too
		close(v.exited)
	}()
	return v, nil
}

var agentExitLine = regexp.MustCompile(`nimbus-agent: exit status=(\d+) oom=([01])`)

// readConsole reads the serial console and QEMU's own output: it keeps the
// last bytes and watches for the init's and the kernel's reports.
func (v *vm) readConsole(r io.ReadCloser) {
	defer close(v.consoleEOF)
	defer r.Close()
	br := bufio.NewReaderSize(r, 16<<10)
	logged := 0
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			v.consoleLine(line)
			if logged < 200 {
				logged++
				v.log.Debug("vm console", "vm", v.id, "line", string(bytes.TrimRight(line, "\r\n")))
			}
		}
		if err != nil {
			return
		}
	}
}

func (v *vm) consoleLine(line []byte) {
	const keep = 4 << 10
	v.mu.Lock()
	v.tail = append(v.tail, line...)
	if len(v.tail) > keep {
		v.tail = append(v.tail[:0], v.tail[len(v.tail)-keep:]...)
	}
	lower := bytes.ToLower(line)
	if bytes.Contains(lower, []byte("out of memory: killed process")) {
		v.oomSeen = true
	}
	if bytes.Contains(line, []byte("JavaScript heap out of memory")) {
		v.heapOOM = true
	}
	var notify func()
	if m := agentExitLine.FindSubmatch(line); m != nil && v.agent == nil {
		st, _ := strconv.Atoi(string(m[1]))
		v.agent = &agentExit{status: st, oom: string(m[2]) == "1"}
		notify = v.onAgent
	}
	v.mu.Unlock()
	if notify != nil {
		notify()
	}
}

// setOnAgent sets what to do when the agent reports the worker's end (or
// does it now if it already has).
func (v *vm) setOnAgent(fn func()) {
	v.mu.Lock()
	v.onAgent = fn
	done := v.agent != nil
	v.mu.Unlock()
	if done {
		fn()
	}
}

// consoleTail is the last lines of the console, for error messages.
func (v *vm) consoleTail(lines int) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	all := strings.Split(strings.TrimRight(string(v.tail), "\r\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.TrimSpace(strings.Join(all, "\n"))
}

// stop kills QEMU and waits for it, its console and its directory to go.
func (v *vm) stop() {
	v.kill()
	<-v.exited
	select {
	case <-v.consoleEOF:
	case <-time.After(time.Second):
	}
	os.RemoveAll(v.dir)
}

func (v *vm) isExited() bool {
	select {
	case <-v.exited:
		return true
	default:
		return false
	}
}

// failure explains a VM that stopped before it was ready.
func (v *vm) failure(what string, err error) error {
	if v.isExited() {
		select {
		case <-v.consoleEOF:
		case <-time.After(time.Second):
		}
		return fmt.Errorf("%s: the VM stopped (%v): %s", what, err, v.consoleTail(8))
	}
	return fmt.Errorf("%s: %w", what, err)
}

// connectSerial connects to the VM's virtio-serial port.
func (v *vm) connectSerial(ctx context.Context) (net.Conn, error) {
	return dialUnix(ctx, filepath.Join(v.dir, "serial.sock"), v.exited)
}

// qmp connects to the VM's machine protocol socket.
func (v *vm) qmp(ctx context.Context) (*qmp, error) {
	return dialQMP(ctx, filepath.Join(v.dir, "qmp.sock"), v.exited)
}

// agentHello reads the agent's frame announcing it reached stage.
func agentHello(ctx context.Context, c net.Conn, stage string) error {
	stop := context.AfterFunc(ctx, func() { _ = c.SetReadDeadline(time.Now()) })
	defer stop()
	b, err := runtime.ReadFrame(c, 64<<10)
	_ = c.SetReadDeadline(time.Time{})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("waiting for the guest agent: %w", err)
	}
	var h struct{ Type, Stage string }
	if err := json.Unmarshal(b, &h); err != nil || h.Type != "agent" || h.Stage != stage {
		return fmt.Errorf("guest agent: want stage %q, got %.200q", stage, b)
	}
	return nil
}

// errVMExited is why a VM's serial connection broke when QEMU is gone.
var errVMExited = errors.New("the virtual machine stopped")
