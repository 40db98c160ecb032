// Package runtimeapitest builds the test bootstrap of the Runtime API
// relay's tests: a static Go program (testdata/bootstrap) that speaks the
// Runtime API with the standard library only, and does what each event's
// "op" says (echo, log, error, crash, sleep, big, ids, alloc). Driver
// tests of the provided runtime share it.
package runtimeapitest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"sync"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/testenv"
)

// EnvGo names the Go toolchain's go command, as the server's setting does.
const EnvGo = "NIMBUS_GO"

// GoCommand finds the go command: EnvGo, PATH, then /usr/local/go/bin/go.
func GoCommand() (string, error) {
	if p := os.Getenv(EnvGo); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	const std = "/usr/local/go/bin/go"
	if _, err := os.Stat(std); err == nil {
		return std, nil
	}
	return "", errors.New("no go command: set " + EnvGo + " or put go in PATH")
}

var build struct {
	once sync.Once
	dir  string
	err  error
}

// Bootstrap returns the path of the test bootstrap (CGO_ENABLED=0: it
// runs in any root), built once per version of its source and kept in the
// temporary directory for the next test processes. Tests that call it need
// the Go toolchain: without one they skip, or fail under CI.
func Bootstrap(tb testing.TB) string {
	tb.Helper()
	gocmd, err := GoCommand()
	testenv.Require(tb, "the go toolchain", err)
	build.once.Do(func() {
		_, self, _, _ := goruntime.Caller(0)
		src := filepath.Join(filepath.Dir(self), "testdata", "bootstrap")
		main, err := os.ReadFile(filepath.Join(src, "main.go"))
		if err != nil {
			build.err = err
			return
		}
		sum := sha256.Sum256(append(main, goruntime.Version()...))
		build.dir = filepath.Join(os.TempDir(), "nimbus-test-bootstrap-"+hex.EncodeToString(sum[:6]))
		if _, err := os.Stat(filepath.Join(build.dir, "bootstrap")); err == nil {
			return
		}
		if build.err = os.MkdirAll(build.dir, 0o755); build.err != nil {
			return
		}
		// Built under a name of its own and renamed: test processes that
		// build at once each get a whole file.
		tmp, err := os.CreateTemp(build.dir, ".bootstrap-*")
		if err != nil {
			build.err = err
			return
		}
		tmp.Close()
		defer os.Remove(tmp.Name())
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, gocmd, "build", "-trimpath", "-ldflags=-s -w", "-o", tmp.Name(), ".")
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod", "GOPROXY=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("build the test bootstrap: %w: %s", err, out)
			return
		}
		if err := os.Chmod(tmp.Name(), 0o755); err != nil {
			build.err = err
			return
		}
		build.err = os.Rename(tmp.Name(), filepath.Join(build.dir, "bootstrap"))
	})
	if build.err != nil {
		tb.Fatal(build.err)
	}
	return filepath.Join(build.dir, "bootstrap")
}

// CodeDir returns a new directory holding the test bootstrap as an
// executable "bootstrap", as a function's unpacked code holds it.
func CodeDir(tb testing.TB) string {
	tb.Helper()
	src := Bootstrap(tb)
	dir := filepath.Join(tb.TempDir(), "code")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bootstrap"), b, 0o755); err != nil {
		tb.Fatal(err)
	}
	return dir
}
