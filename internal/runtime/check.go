package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"strings"
	"time"

	_ "embed"
)

// The syntax checkers, run by CheckSyntax.
var (
	//go:embed python/check.py
	pythonChecker string
	//go:embed node/check.js
	nodeChecker string
)

// Runtime names CheckSyntax accepts.
const (
	RuntimePython = "python"
	RuntimeNodeJS = "nodejs"
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

// CheckSyntax parses the function's source files, runtime "python" or
// "nodejs", with the real interpreter, in one process that runs none of
// them: Python compiles every .py file; Node parses every .js and .cjs file
// as CommonJS and every .mjs file (or .js in a "type": "module" package, or
// .js with import/export syntax) as an ES module. files maps paths to
// contents. It returns nil, the first *SyntaxError in path order, or a plain
// error when the check could not run.
func CheckSyntax(ctx context.Context, in Interpreters, runtime string, files map[string]string) error {
	var (
		bin    string
		args   []string
		wanted func(string) bool
	)
	switch runtime {
	case RuntimePython:
		bin = in.Python
		args = []string{"-I", "-B", "-c", pythonChecker}
		wanted = func(p string) bool { return strings.HasSuffix(p, ".py") }
	case RuntimeNodeJS:
		bin = in.Node
		args = []string{"--expose-internals", "--experimental-vm-modules", "--no-warnings", "-e", nodeChecker}
		wanted = func(p string) bool {
			switch path.Ext(p) {
			case ".js", ".cjs", ".mjs":
				return true
			}
			return path.Base(p) == "package.json"
		}
	default:
		return fmt.Errorf("check syntax: unknown runtime %q", runtime)
	}
	if bin == "" {
		return fmt.Errorf("check syntax: no %s interpreter on this host", runtime)
	}
	sources := make(map[string]string)
	for p, c := range files {
		if wanted(p) {
			sources[p] = c
		}
	}
	if len(sources) == 0 {
		return nil
	}
	input, err := json.Marshal(sources)
	if err != nil {
		return fmt.Errorf("check syntax: %w", err)
	}

	ctx, cancel := context.WithTimeout(ctx, CheckTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = bytes.NewReader(input)
	cmd.Env = []string{"LANG=C.UTF-8", "PATH=/usr/local/bin:/usr/bin:/bin"}
	cmd.Dir = os.TempDir()
	cmd.WaitDelay = time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
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
