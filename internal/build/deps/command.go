package deps

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// command is one build's process: what runs, where, with what, and which
// host paths it needs to see besides the system's.
type command struct {
	path  string   // the interpreter
	args  []string // argv, the interpreter first
	dir   string   // working directory
	env   []string
	needs []string // host files and directories the build reads (interpreter, npm, local package sources)
	// writable are host directories besides the work directory the build
	// writes (Go's caches), created for the build user.
	writable []string
	net      bool   // needs the host's network
	what     string // for people: "pip install -r requirements.txt"
}

// workDirs is the layout of a build's work directory, owned by the build
// user: the layer it fills, and its HOME and TMPDIR.
type workDirs struct {
	work, layer, home, tmp string
}

func newWorkDirs(work string) workDirs {
	return workDirs{
		work:  work,
		layer: filepath.Join(work, "layer"),
		home:  filepath.Join(work, "home"),
		tmp:   filepath.Join(work, "tmp"),
	}
}

// baseEnv is every build's environment: nothing of the server's.
func baseEnv(interp string, w workDirs) []string {
	return []string{
		"PATH=" + filepath.Dir(interp) + ":/usr/local/bin:/usr/bin:/bin",
		"HOME=" + w.home,
		"TMPDIR=" + w.tmp,
		"LANG=C.UTF-8",
	}
}

// pipCommand installs the requirements file into the layer's python/
// directory (Lambda's layout). The host's pip configuration is ignored:
// only Config says where packages come from.
func (b *Builder) pipCommand(p *Plan, w workDirs) (*command, error) {
	python := b.cfg.Interpreters.Path(runtime.Python)
	if err := b.hasPip(python); err != nil {
		return nil, err
	}
	c := &command{
		path: python,
		args: []string{python, "-I", "-m", "pip", "install",
			"--target", filepath.Join(w.layer, "python"),
			"--no-cache-dir", "--disable-pip-version-check", "--no-warn-script-location",
			"--no-input", "--progress-bar", "off",
			"-r", filepath.Join(w.work, requirementsTxt)},
		dir:   w.work,
		env:   append(baseEnv(python, w), "PIP_CONFIG_FILE="+os.DevNull),
		needs: []string{interpreterPrefix(python)},
		net:   !b.cfg.offline(),
		what:  "pip install -r " + requirementsTxt,
	}
	if !p.Scripts {
		c.args = append(c.args, "--only-binary=:all:") // wheels only: no setup.py runs
	}
	switch {
	case b.cfg.PipIndexURL != "":
		c.args = append(c.args, "--index-url", b.cfg.PipIndexURL)
	case b.cfg.PipFindLinks != "":
		c.args = append(c.args, "--no-index")
	}
	if b.cfg.PipFindLinks != "" {
		c.args = append(c.args, "--find-links", b.cfg.PipFindLinks)
	}
	for _, s := range []string{b.cfg.PipIndexURL, b.cfg.PipFindLinks} {
		if d := localPath(s); d != "" {
			c.needs = append(c.needs, d)
		}
	}
	return c, nil
}

// npmCommand installs package.json's dependencies in the layer's nodejs/
// directory: npm ci with the code's lock, npm install without one (whose
// lock stays in the layer). The host's npm configuration is ignored.
func (b *Builder) npmCommand(p *Plan, w workDirs) (*command, error) {
	node := b.cfg.Interpreters.Path(runtime.NodeJS)
	cli, err := npmCLI(node)
	if err != nil {
		return nil, err
	}
	verb := "install"
	if p.lock {
		verb = "ci"
	}
	c := &command{
		path: node,
		args: []string{node, cli, verb, "--omit=dev", "--no-audit", "--no-fund", "--no-update-notifier"},
		dir:  filepath.Join(w.layer, "nodejs"),
		env: append(baseEnv(node, w),
			"npm_config_cache="+filepath.Join(w.home, ".npm"),
			"npm_config_userconfig="+filepath.Join(w.home, ".npmrc"),
			"npm_config_globalconfig="+filepath.Join(w.home, "npmrc"),
		),
		// npm's package, whatever of it lies outside the interpreter's
		// installation.
		needs: []string{interpreterPrefix(node), filepath.Dir(filepath.Dir(cli))},
		net:   true,
		what:  "npm " + verb,
	}
	if p.Scripts {
		c.args = append(c.args, "--foreground-scripts") // their output in the log
	} else {
		c.args = append(c.args, "--ignore-scripts")
	}
	if b.cfg.NpmRegistry != "" {
		c.args = append(c.args, "--registry", b.cfg.NpmRegistry)
	}
	return c, nil
}

// npmCLI finds npm's entry point beside node: the npm command there (a
// symbolic link to npm-cli.js in every layout seen: Node's tarballs,
// NodeSource's and Debian's packages), or lib/node_modules/npm.
func npmCLI(node string) (string, error) {
	bin := filepath.Dir(node)
	if real, err := filepath.EvalSymlinks(filepath.Join(bin, "npm")); err == nil && filepath.Base(real) == "npm-cli.js" {
		return real, nil
	}
	cli := filepath.Join(filepath.Dir(bin), "lib", "node_modules", "npm", "bin", "npm-cli.js")
	if _, err := os.Stat(cli); err == nil {
		return cli, nil
	}
	return "", fmt.Errorf("deps: node at %s has no npm beside it: install npm", node)
}

// pipCheckTimeout bounds "python3 -m pip --version".
const pipCheckTimeout = 30 * time.Second

// hasPip checks, once per interpreter, that python has pip.
func (b *Builder) hasPip(python string) error {
	if _, ok := b.checkPip.Load(python); ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), pipCheckTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-I", "-m", "pip", "--version")
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "PIP_CONFIG_FILE=" + os.DevNull}
	cmd.Dir = "/"
	cmd.WaitDelay = time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if len(msg) > 300 {
			msg = "…" + msg[len(msg)-300:]
		}
		return fmt.Errorf("deps: python3 at %s has no pip: install python3-pip (%v: %s)", python, err, msg)
	}
	b.checkPip.Store(python, true)
	return nil
}
