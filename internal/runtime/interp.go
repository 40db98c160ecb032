package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Interpreters are the language runtimes' real executables (not wrapper
// scripts such as pyenv shims, which cost a process start each) and their
// versions ("3.11.7", "20.20.2"). An empty path means that runtime is
// unavailable.
type Interpreters struct {
	Python, PythonVersion string
	Node, NodeVersion     string
}

// Environment variables that override where the interpreters are.
const (
	EnvPython = "NIMBUS_PYTHON"
	EnvNode   = "NIMBUS_NODE"
)

// probeTimeout bounds one interpreter probe.
const probeTimeout = 10 * time.Second

// probeEnv are the variables passed to a probe, so that version-manager
// shims (pyenv, asdf, nvm, volta) resolve as they would in a shell.
var probeEnv = []string{
	"PATH", "HOME", "USER", "LANG", "LC_ALL", "TMPDIR",
	"PYENV_ROOT", "PYENV_VERSION", "PYENV_DIR", "ASDF_DIR", "ASDF_DATA_DIR",
	"VIRTUAL_ENV", "CONDA_PREFIX", "NVM_DIR", "NVM_BIN", "VOLTA_HOME",
}

type probe struct {
	runtime  string // "python", "node"
	override string // environment variable naming the interpreter
	command  string // looked up in PATH otherwise
	args     []string
}

var (
	pythonProbe = probe{"python", EnvPython, "python3",
		[]string{"-I", "-c", "import sys; print(sys.executable); print('%d.%d.%d' % sys.version_info[:3])"}}
	nodeProbe = probe{"node", EnvNode, "node",
		[]string{"-e", "process.stdout.write(process.execPath + '\\n' + process.versions.node + '\\n')"}}
)

// FindInterpreters finds python3 and node: the commands named by
// NIMBUS_PYTHON and NIMBUS_NODE, or else python3 and node in PATH, all read
// through lookup (os.LookupEnv, usually). Each is run once to learn its real
// executable and version. A runtime that is missing or broken leaves its
// fields empty and adds an error; the other is still found.
func FindInterpreters(ctx context.Context, lookup func(string) (string, bool)) (Interpreters, []error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	env := make([]string, 0, len(probeEnv))
	for _, k := range probeEnv {
		if v, ok := lookup(k); ok {
			env = append(env, k+"="+v)
		}
	}
	path, _ := lookup("PATH")

	var (
		in   Interpreters
		errs [2]error
		wg   sync.WaitGroup
	)
	for i, p := range []probe{pythonProbe, nodeProbe} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			exe, version, err := p.run(ctx, lookup, path, env)
			if err != nil {
				errs[i] = err
				return
			}
			if p.runtime == "python" {
				in.Python, in.PythonVersion = exe, version
			} else {
				in.Node, in.NodeVersion = exe, version
			}
		}()
	}
	wg.Wait()
	var out []error
	for _, err := range errs {
		if err != nil {
			out = append(out, err)
		}
	}
	return in, out
}

func (p probe) run(ctx context.Context, lookup func(string) (string, bool), path string, env []string) (exe, version string, err error) {
	cmd := p.command
	if v, ok := lookup(p.override); ok && v != "" {
		cmd = v
	}
	bin, err := lookPath(cmd, path)
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", p.runtime, err)
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	c := exec.CommandContext(ctx, bin, p.args...)
	c.Env = env
	c.Dir = os.TempDir()
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	c.WaitDelay = time.Second
	if err := c.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 500 {
			msg = msg[len(msg)-500:]
		}
		if msg != "" {
			return "", "", fmt.Errorf("%s: run %s: %w: %s", p.runtime, bin, err, msg)
		}
		return "", "", fmt.Errorf("%s: run %s: %w", p.runtime, bin, err)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 2 || !filepath.IsAbs(strings.TrimSpace(lines[0])) {
		return "", "", fmt.Errorf("%s: %s printed %q, want its executable and version", p.runtime, bin, stdout.String())
	}
	exe, version = strings.TrimSpace(lines[0]), strings.TrimSpace(lines[1])
	if err := isExecutable(exe); err != nil {
		return "", "", fmt.Errorf("%s: %s reports executable %s: %w", p.runtime, bin, exe, err)
	}
	return exe, version, nil
}

// lookPath finds name as exec.LookPath does, but in the given PATH value
// rather than this process's.
func lookPath(name, path string) (string, error) {
	if strings.Contains(name, "/") {
		abs, err := filepath.Abs(name)
		if err != nil {
			return "", err
		}
		if err := isExecutable(abs); err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
		return abs, nil
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue // a relative PATH entry would depend on the cwd
		}
		p := filepath.Join(dir, name)
		if isExecutable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in PATH", name)
}

var errNotExecutable = errors.New("not an executable file")

func isExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%w (mode %v)", errNotExecutable, fi.Mode())
	}
	return nil
}
