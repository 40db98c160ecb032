package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"time"
)

// CheckTimeout bounds one CheckSyntax run.
const CheckTimeout = 10 * time.Second

// SyntaxError is a syntax error in one of a function's source files.
type SyntaxError struct {
	File    string // path among the function's files, e.g. "lib/app.js"
	Line    int    // 1-based; 0 if unknown
	Message string // the interpreter's, e.g. "invalid syntax"
}

func (e *SyntaxError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s line %d: %s", e.File, e.Line, e.Message)
	}
	return e.File + ": " + e.Message
}

// CheckSyntax parses the function's source files with the runtime's real
// interpreter, as its descriptor's SyntaxCheck says, in one process that
// runs none of them: Python compiles every .py file; Node parses every .js and .cjs file
// as CommonJS and every .mjs file (or .js in a "type": "module" package, or
// .js with import/export syntax) as an ES module. files maps paths to
// contents. It returns nil, the first *SyntaxError in path order, or a plain
// error when the check could not run.
func CheckSyntax(ctx context.Context, in Interpreters, runtime string, files map[string]string) error {
	return checkSyntax(ctx, in, runtime, files, nil)
}

// A Checker runs CheckSyntax for a server, where anyone who can create a
// function chooses the input: a few megabytes of source can make an
// interpreter's compiler hold gigabytes. At most Slots checks run at once
// (the rest wait for a slot or for their context), and each process is
// confined by Confine, if set, before it reads the sources.
type Checker struct {
	Interpreters Interpreters
	// Confine puts process pid under a memory limit; release undoes it
	// once the process has exited.
	Confine func(pid int) (release func(), err error)
	slots   chan struct{}
}

// NewChecker returns a Checker that runs at most slots checks at once.
func NewChecker(in Interpreters, slots int, confine func(pid int) (func(), error)) *Checker {
	return &Checker{Interpreters: in, Confine: confine, slots: make(chan struct{}, max(slots, 1))}
}

// ErrCheckKilled is returned when a confined checker was killed before it
// finished: it needed more memory than its limit allows.
var ErrCheckKilled = errors.New("the syntax checker ran out of memory")

// Check is CheckSyntax, confined and limited in number.
func (c *Checker) Check(ctx context.Context, runtime string, files map[string]string) error {
	select {
	case c.slots <- struct{}{}:
		defer func() { <-c.slots }()
	case <-ctx.Done():
		return fmt.Errorf("check syntax: waiting for a free checker: %w", ctx.Err())
	}
	return checkSyntax(ctx, c.Interpreters, runtime, files, c.Confine)
}

func checkSyntax(ctx context.Context, in Interpreters, runtime string, files map[string]string, confine func(int) (func(), error)) error {
	r, ok := Lookup(runtime)
	if !ok {
		return fmt.Errorf("check syntax: unknown runtime %q", runtime)
	}
	if r.Check == nil {
		return nil
	}
	bin := in.Path(runtime)
	if bin == "" {
		return fmt.Errorf("check syntax: no %s interpreter on this host", runtime)
	}
	checked := make(map[string]string)
	for p, c := range files {
		if r.Check.checks(p) {
			checked[p] = c
		}
	}
	if len(checked) == 0 {
		return nil
	}
	input, err := json.Marshal(checked)
	if err != nil {
		return fmt.Errorf("check syntax: %w", err)
	}

	ctx, cancel := context.WithTimeout(ctx, CheckTimeout)
	defer cancel()
	args := append(slices.Clone(r.Check.Args), string(r.source(r.Check.Script)))
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"LANG=C.UTF-8", "PATH=/usr/local/bin:/usr/bin:/bin"}
	cmd.Dir = os.TempDir()
	cmd.WaitDelay = time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("check syntax: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("check syntax: %s: %w", runtime, err)
	}
	// The checker reads all its input before it parses anything, so it is
	// confined before it can use much memory.
	confined := false
	if confine != nil {
		release, err := confine(cmd.Process.Pid)
		if err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			return fmt.Errorf("check syntax: confine the checker: %w", err)
		}
		defer release()
		confined = true
	}
	go func() {
		stdin.Write(input)
		stdin.Close()
	}()
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		switch {
		case ctx.Err() != nil:
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		case confined && errors.As(err, &ee) && killed(ee):
			return fmt.Errorf("check syntax: %s: %w", runtime, ErrCheckKilled)
		}
		return fmt.Errorf("check syntax: %s: %w%s", runtime, err, tail(stderr.Bytes()))
	}
	var out struct {
		File    string `json:"file"`
		Line    int    `json:"line"`
		Message string `json:"message"`
	}
	// The verdict is the last line: anything printed before it (a site
	// hook, say) is not ours.
	verdict := bytes.TrimSpace(stdout.Bytes())
	if i := bytes.LastIndexByte(verdict, '\n'); i >= 0 {
		verdict = verdict[i+1:]
	}
	if err := json.Unmarshal(verdict, &out); err != nil {
		return fmt.Errorf("check syntax: %s: bad checker output %q: %w%s", runtime, stdout.Bytes(), err, tail(stderr.Bytes()))
	}
	if out.File == "" {
		return nil
	}
	return &SyntaxError{File: out.File, Line: out.Line, Message: out.Message}
}

// killed reports whether the process was ended by SIGKILL, as the OOM
// killer ends it.
func killed(ee *exec.ExitError) bool {
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// tail formats the end of a process's stderr for an error message.
func tail(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return ""
	}
	if len(b) > 1000 {
		b = b[len(b)-1000:]
	}
	return ": " + string(b)
}
