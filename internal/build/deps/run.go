package deps

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// waitDelay is how long a killed build's output may still be read.
const waitDelay = 5 * time.Second

// errTimedOut is the cause of a build's context when its Timeout expires.
var errTimedOut = errors.New("build timed out")

// build runs p's build in a new directory under tmp and moves the layer
// it makes to dst.
func (b *Builder) build(ctx context.Context, p *Plan, dst string, log io.Writer) error {
	name := rand.Text()
	b.mu.Lock()
	b.inProcess[name] = true // before it exists: Collect leaves it alone
	b.mu.Unlock()
	tmpdir := filepath.Join(b.tmp, name)
	defer func() {
		removeTree(tmpdir)
		b.mu.Lock()
		delete(b.inProcess, name)
		b.mu.Unlock()
	}()
	w := newWorkDirs(filepath.Join(tmpdir, "work"))
	var (
		c   *command
		err error
	)
	switch p.tool {
	case "pip":
		c, err = b.pipCommand(p, w)
	case "npm":
		c, err = b.npmCommand(p, w)
	case "go":
		c, err = b.goCommand(p, w)
	default:
		err = fmt.Errorf("deps: %s: not a plan made by Plan", p.Runtime)
	}
	if err != nil {
		return err
	}
	if err := b.prepare(p, tmpdir, w); err != nil {
		return fmt.Errorf("deps: build %s layer %s: %w", p.Runtime, p.Key, err)
	}

	out := &output{log: log}
	out.note("build %s layer %s: %s (%s)", p.Runtime, p.Key, c.what, b.describe(c))
	start := time.Now()
	if err := b.run(ctx, c, w, tmpdir, out); err != nil {
		out.flush()
		var be *BuildError
		if errors.As(err, &be) {
			be.Runtime, be.Key, be.Output = p.Runtime, p.Key, out.lastLines()
			return err
		}
		return fmt.Errorf("deps: build %s layer %s: %w", p.Runtime, p.Key, err)
	}
	out.flush()
	if err := b.install(w.layer, dst, out); err != nil {
		return fmt.Errorf("deps: build %s layer %s: %w", p.Runtime, p.Key, err)
	}
	out.note("built layer %s in %s", p.Key, time.Since(start).Round(100*time.Millisecond))
	return nil
}

// prepare lays out the work directory, gives it to the build user and
// writes the dependency files into it.
func (b *Builder) prepare(p *Plan, tmpdir string, w workDirs) error {
	if err := os.Mkdir(tmpdir, 0o700); err != nil {
		return err
	}
	var sub string
	switch p.tool {
	case "pip":
		sub = "python"
	case "npm":
		sub = "nodejs"
	case "go":
		sub = "../src" // the sources, beside the layer: only the bootstrap goes in
	}
	for _, d := range []string{w.work, w.home, w.tmp, w.layer, filepath.Join(w.layer, sub)} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return err
		}
	}
	for name, data := range p.input {
		dir := w.work // the requirements file: not part of the layer
		switch p.tool {
		case "npm":
			dir = filepath.Join(w.layer, sub) // package.json and its lock, where npm runs
		case "go":
			dir = filepath.Join(w.work, "src")
		}
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return err
		}
	}
	if !b.isolate {
		return nil
	}
	return filepath.WalkDir(w.work, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, b.cfg.UID, b.cfg.GID)
	})
}

// describe says, for the build's log, how the build is held.
func (b *Builder) describe(c *command) string {
	var parts []string
	if b.isolate {
		ns := "mount, pid, ipc, uts"
		if !c.net {
			ns += ", net (no network)"
		}
		parts = append(parts, fmt.Sprintf("uid %d", b.cfg.UID), "namespaces "+ns)
	} else {
		parts = append(parts, "not isolated: the server is not root")
	}
	if b.cfg.Confine != nil {
		parts = append(parts, fmt.Sprintf("memory %d MB", b.cfg.MemoryMB))
	} else {
		parts = append(parts, "memory not limited")
	}
	parts = append(parts, "time "+b.cfg.Timeout.String())
	return strings.Join(parts, ", ")
}

// run runs c through the build helper and waits for it: the helper is
// started, confined, and only then given its spec, so that nothing of the
// build runs before it is under its memory limit. Whatever the build
// leaves running is killed when it ends.
func (b *Builder) run(ctx context.Context, c *command, w workDirs, tmpdir string, out *output) error {
	spec := b.spec(c, w, filepath.Join(tmpdir, "root"))
	if spec.Isolate {
		if err := os.Mkdir(spec.Root, 0o755); err != nil {
			return err
		}
	}
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, b.cfg.Timeout, errTimedOut)
	defer cancel()
	specR, specW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer specW.Close()
	cmd := exec.CommandContext(ctx, "/proc/self/exe")
	cmd.Args = []string{helperName}
	cmd.Env = []string{} // the helper's: nothing; the build's is in the spec
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = out, out
	cmd.ExtraFiles = []*os.File{specR} // fd 3
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
	if spec.Isolate {
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS
		if !c.net {
			cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWNET
		}
	}
	// The helper leads its own session: its group is everything the build
	// starts that did not leave it.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = waitDelay
	err = cmd.Start()
	specR.Close()
	if err != nil {
		return fmt.Errorf("start the build: %w", err)
	}
	pid := cmd.Process.Pid
	if b.cfg.Confine != nil {
		release, err := b.cfg.Confine(pid, b.cfg.MemoryMB)
		if err != nil {
			syscall.Kill(-pid, syscall.SIGKILL)
			cmd.Wait()
			return fmt.Errorf("confine the build: %w", err)
		}
		defer release() // after the helper has exited
	}
	// The go-ahead. A helper that died already makes this fail; Wait says
	// why.
	specW.Write(specJSON)
	specW.Close()

	// The helper's group is killed once it has exited and before it is
	// reaped, while its id cannot be another's.
	waitExited(pid)
	syscall.Kill(-pid, syscall.SIGKILL)
	err = cmd.Wait()
	if err == nil {
		return nil
	}
	tool := strings.Fields(c.what)[0] // "pip", "npm"
	var ee *exec.ExitError
	switch {
	case errors.Is(context.Cause(ctx), errTimedOut):
		err = fmt.Errorf("timed out after %s: %w", b.cfg.Timeout, context.DeadlineExceeded)
	case ctx.Err() != nil:
		err = fmt.Errorf("%w", context.Cause(ctx))
	case errors.As(err, &ee) && ee.ExitCode() == helperFailed:
		err = fmt.Errorf("the build sandbox could not be set up (status %d)", helperFailed)
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		err = fmt.Errorf("%s exited with status %d", tool, ee.ExitCode())
	case errors.As(err, &ee):
		msg := fmt.Sprintf("%s was killed by signal %v", tool, ee.Sys().(syscall.WaitStatus).Signal())
		if b.cfg.Confine != nil && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL {
			msg += fmt.Sprintf(" (out of memory? the limit is %d MB)", b.cfg.MemoryMB)
		}
		err = errors.New(msg)
	}
	return &BuildError{Err: err}
}

// waitExited waits until process pid has exited, without reaping it.
func waitExited(pid int) {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			return
		}
	}
}

// Output kept for a failed build's error.
const (
	tailLines = 20
	maxLine   = 4096 // longer lines are passed on in pieces
	maxTail   = 512  // bytes of one line kept
)

// output passes a build's output on to its log line by line as it comes,
// keeping the last lines for the error of a failed build.
type output struct {
	mu   sync.Mutex
	log  io.Writer
	line []byte
	tail []string
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			o.line = append(o.line, p...)
			if len(o.line) >= maxLine {
				o.emit()
			}
			break
		}
		o.line = append(o.line, p[:i]...)
		o.emit()
		p = p[i+1:]
	}
	return n, nil
}

// emit passes the line on; a log that fails does not fail the build.
func (o *output) emit() {
	line := strings.TrimRight(string(o.line), "\r")
	o.line = o.line[:0]
	o.log.Write([]byte(line + "\n"))
	if len(line) > maxTail {
		line = line[:maxTail] + "…"
	}
	if len(o.tail) == tailLines {
		o.tail = append(o.tail[:0], o.tail[1:]...)
	}
	o.tail = append(o.tail, line)
}

// flush passes on a last line without a newline.
func (o *output) flush() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.line) > 0 {
		o.emit()
	}
}

// note writes a line of Nimbus's own to the log (not kept for errors).
func (o *output) note(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintf(o.log, format+"\n", args...)
}

func (o *output) lastLines() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.tail...)
}

// interpreterPrefix is the installation an interpreter belongs to, which a
// build must see: two levels above the real executable
// (/opt/python/bin/python3 → /opt/python), or its own directory when that
// would be a top-level directory (/root, /opt). As the sandbox driver's.
func interpreterPrefix(exe string) string {
	real, err := filepath.EvalSymlinks(exe)
	if err != nil {
		real = exe
	}
	bin := filepath.Dir(real)
	prefix := filepath.Dir(bin)
	if strings.Count(prefix, "/") < 2 || prefix == "/" {
		return bin
	}
	return prefix
}
