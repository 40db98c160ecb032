package deps

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"time"
)

// Go functions: code holding go.mod and no bootstrap, of the provided
// runtime, is built at deploy: "go build" of the module's main package,
// CGO_ENABLED=0 (a static binary runs in any root), into the layer's
// bootstrap, which the Runtime API relay finds there (/opt/layers/<i>).
// The layer's key hashes every file of the code, so any change rebuilds.
//
// Modules come from Config.GoProxy (GOPROXY; "off" or a file:// URL needs
// no network), or from the code's own vendor/ directory, which builds
// with no network at all. Go's build and module caches persist between
// builds under Config.GoCache, one pair per go.sum and Go version: a
// rebuild of changed code with the same dependencies downloads and
// compiles nothing of them again.

// goMod and goSum are the files that make code a Go module.
const (
	goMod = "go.mod"
	goSum = "go.sum"
)

// entryBootstrap is what a Go build makes: the provided runtime's entry.
const entryBootstrap = "bootstrap"

// planGo plans a Go build of code that has go.mod and no prebuilt
// bootstrap; ok is false for any other code (a prebuilt bootstrap runs as
// it is). Every regular file of the code is the build's input.
func planGo(root *os.Root, p *Plan) (bool, error) {
	if _, err := root.Stat(entryBootstrap); err == nil {
		return false, nil
	}
	if _, err := root.Stat(goMod); err != nil {
		return false, nil
	}
	p.tool = "go"
	p.Files = []string{goMod}
	err := fs.WalkDir(root.FS(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil // directories; links are not followed out of the code
		}
		b, err := root.ReadFile(path)
		if err != nil {
			return err
		}
		p.input[path] = b
		if path == goSum {
			p.Files = append(p.Files, goSum)
		}
		if path == "vendor/modules.txt" {
			p.vendored = true
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("deps: read the Go sources: %w", err)
	}
	return true, nil
}

// goVersionTimeout bounds "go env GOVERSION".
const goVersionTimeout = 30 * time.Second

// goVersion is the Go toolchain's version ("go1.26.8"), asked once.
func (b *Builder) goVersion() (string, error) {
	if b.cfg.Go == "" {
		return "", fmt.Errorf("deps: the code is a Go module (%s), but no Go toolchain is configured: set %s or put go in PATH", goMod, EnvGo)
	}
	b.goOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), goVersionTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, b.cfg.Go, "env", "GOVERSION", "GOROOT")
		cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + os.TempDir(), "GOTOOLCHAIN=local", "GOENV=off"}
		cmd.Dir = "/"
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			b.goErr = fmt.Errorf("deps: %s env GOVERSION: %w: %s", b.cfg.Go, err, strings.TrimSpace(errb.String()))
			return
		}
		lines := strings.Fields(out.String())
		if len(lines) != 2 {
			b.goErr = fmt.Errorf("deps: %s env printed %q", b.cfg.Go, out.String())
			return
		}
		b.goVer, b.goRoot = lines[0], lines[1]
	})
	return b.goVer, b.goErr
}

// goOffline reports whether a Go build of p needs no network: its
// modules are vendored, or the proxy is off or a local directory.
func (b *Builder) goOffline(p *Plan) bool {
	proxy := b.cfg.GoProxy
	return p.vendored || proxy == "off" || (strings.HasPrefix(proxy, "file://") && !strings.Contains(proxy, ","))
}

// goCacheDir is the build and module cache of builds with p's go.sum and
// Go version, created for the build user.
func (b *Builder) goCacheDir(p *Plan) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", b.goVer, goruntime.GOARCH)
	h.Write(p.input[goSum])
	dir := filepath.Join(b.cfg.GoCache, hex.EncodeToString(h.Sum(nil))[:24])
	for _, d := range []string{b.cfg.GoCache, dir, filepath.Join(dir, "build"), filepath.Join(dir, "mod")} {
		if err := os.Mkdir(d, 0o700); err != nil && !os.IsExist(err) {
			return "", err
		}
		if b.isolate && d != b.cfg.GoCache {
			if err := os.Chown(d, b.cfg.UID, b.cfg.GID); err != nil {
				return "", err
			}
		}
	}
	if b.isolate {
		// The build user passes through it to its own cache.
		if err := os.Chmod(b.cfg.GoCache, 0o711); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// goCommand builds the module's main package into the layer's bootstrap:
// static, stripped, for this host's architecture.
func (b *Builder) goCommand(p *Plan, w workDirs) (*command, error) {
	if _, err := b.goVersion(); err != nil {
		return nil, err
	}
	cache, err := b.goCacheDir(p)
	if err != nil {
		return nil, fmt.Errorf("deps: Go cache: %w", err)
	}
	offline := b.goOffline(p)
	flags := "-mod=mod"
	if p.vendored {
		flags = "-mod=vendor"
	}
	env := append(baseEnv(b.cfg.Go, w),
		"CGO_ENABLED=0",
		"GOOS=linux",
		"GOARCH="+goruntime.GOARCH,
		"GOFLAGS="+flags,
		"GOPROXY="+b.cfg.GoProxy,
		"GOCACHE="+filepath.Join(cache, "build"),
		"GOMODCACHE="+filepath.Join(cache, "mod"),
		"GOPATH="+filepath.Join(w.home, "go"),
		"GOTOOLCHAIN=local", // never a toolchain download
		"GOENV=off",
		"GOTELEMETRY=off",
	)
	if offline {
		env = append(env, "GOSUMDB=off") // go.sum, in the code, is the check
	} else if b.cfg.GoSumDB != "" {
		env = append(env, "GOSUMDB="+b.cfg.GoSumDB)
	}
	c := &command{
		path:     b.cfg.Go,
		args:     []string{b.cfg.Go, "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(w.layer, entryBootstrap), "."},
		dir:      filepath.Join(w.work, "src"),
		env:      env,
		needs:    []string{b.goRoot},
		writable: []string{cache},
		net:      !offline,
		what:     "go build -o bootstrap",
	}
	if d := localPath(b.cfg.GoProxy); d != "" {
		c.needs = append(c.needs, d)
	}
	return c, nil
}

// findGo is the go command: lookup's EnvGo, else go in PATH, else the
// standard installation's. "" if there is none.
func findGo(lookup func(string) (string, bool)) string {
	if v, ok := lookup(EnvGo); ok && v != "" {
		return v
	}
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/local/go/bin/go"); err == nil {
		return "/usr/local/go/bin/go"
	}
	return ""
}

// FindGo is the go command the server's builds use, found through lookup
// (os.LookupEnv): NIMBUS_GO, PATH, /usr/local/go/bin/go; "" if none.
func FindGo(lookup func(string) (string, bool)) string {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	p := findGo(lookup)
	if p == "" {
		return ""
	}
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	if real, err := filepath.EvalSymlinks(p); err == nil {
		return real
	}
	return p
}

// DefaultGoProxy is GOPROXY when the setting is empty: the server's own
// GOPROXY, else Go's default.
func DefaultGoProxy(lookup func(string) (string, bool)) string {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	if v, ok := lookup("GOPROXY"); ok && v != "" {
		return v
	}
	return "https://proxy.golang.org,direct"
}
