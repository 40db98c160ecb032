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

// Interpreter is one runtime's real executable (not a wrapper script such
// as a pyenv shim, which costs a process start each) and its version
// ("3.11.7", "20.20.2").
type Interpreter struct {
	Path, Version string
}

// Interpreters are the interpreters found on this host, by runtime name. A
// runtime missing from the map is unavailable.
type Interpreters map[string]Interpreter

// Path is runtime rt's interpreter, "" if it has none.
func (in Interpreters) Path(rt string) string { return in[rt].Path }

// Version is runtime rt's interpreter's version, "" if it has none.
func (in Interpreters) Version(rt string) string { return in[rt].Version }

// Paths are the interpreters found, in table order.
func (in Interpreters) Paths() []string {
	var out []string
	for _, r := range table {
		if p := in.Path(r.Name); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// probeTimeout bounds one interpreter probe.
const probeTimeout = 10 * time.Second

// probeEnv are the variables passed to a probe, so that version-manager
// shims (pyenv, asdf, nvm, volta) resolve as they would in a shell.
var probeEnv = []string{
	"PATH", "HOME", "USER", "LANG", "LC_ALL", "TMPDIR",
	"PYENV_ROOT", "PYENV_VERSION", "PYENV_DIR", "ASDF_DIR", "ASDF_DATA_DIR",
	"VIRTUAL_ENV", "CONDA_PREFIX", "NVM_DIR", "NVM_BIN", "VOLTA_HOME",
}

// FindInterpreters finds every runtime's interpreter: the command named by
// its variable (NIMBUS_PYTHON, NIMBUS_NODE), or else its command in PATH
// (python3, node), all read through lookup (os.LookupEnv, usually). Each is
// run once to learn its real executable and version. A runtime whose
// interpreter is missing or broken is left out and adds an error; the
// others are still found.
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
		found = make([]Interpreter, len(table))
		errs  = make([]error, len(table))
		wg    sync.WaitGroup
	)
	for i, r := range table {
		if r.Command == "" {
			continue // no interpreter: the relay runs the function's own executable
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			found[i].Path, found[i].Version, errs[i] = probe(ctx, r, lookup, path, env)
		}()
	}
	wg.Wait()
	in := Interpreters{}
	var out []error
	for i, r := range table {
		if r.Command == "" {
			continue
		}
		if errs[i] != nil {
			out = append(out, errs[i])
			continue
		}
		in[r.Name] = found[i]
	}
	return in, out
}

// probe runs r's interpreter to learn its real executable and version.
func probe(ctx context.Context, r *Runtime, lookup func(string) (string, bool), path string, env []string) (exe, version string, err error) {
	cmd := r.Command
	if v, ok := lookup(r.Env); ok && v != "" {
		cmd = v
	}
	bin, err := lookPath(cmd, path)
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", r.Name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	c := exec.CommandContext(ctx, bin, r.Probe...)
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
			return "", "", fmt.Errorf("%s: run %s: %w: %s", r.Name, bin, err, msg)
		}
		return "", "", fmt.Errorf("%s: run %s: %w", r.Name, bin, err)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 2 || !filepath.IsAbs(strings.TrimSpace(lines[0])) {
		return "", "", fmt.Errorf("%s: %s printed %q, want its executable and version", r.Name, bin, stdout.String())
	}
	exe, version = strings.TrimSpace(lines[0]), strings.TrimSpace(lines[1])
	if err := isExecutable(exe); err != nil {
		return "", "", fmt.Errorf("%s: %s reports executable %s: %w", r.Name, bin, exe, err)
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
