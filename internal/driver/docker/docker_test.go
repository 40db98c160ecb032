package docker_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/driver/docker"
	dockerbuild "github.com/nimbusfaas/nimbus/internal/driver/docker/build"
	"github.com/nimbusfaas/nimbus/internal/driver/drivertest"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/runtimeapi"
	"github.com/nimbusfaas/nimbus/internal/testenv"
)

var (
	setupOnce sync.Once
	setupErr  error
	interp    runtime.Interpreters
	shims     runtime.Shims
	cli       *client.Client
)

// requireDocker skips a test when no Docker daemon answers, except in CI
// (CI set), where the daemon must be there and the test fails. It builds
// the local runtime images once per test binary: no registry is needed.
func requireDocker(t testing.TB) {
	t.Helper()
	setupOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cli, setupErr = client.New(client.FromEnv)
		if setupErr != nil {
			return
		}
		if _, setupErr = cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); setupErr != nil {
			return
		}
		interp, _ = runtime.FindInterpreters(ctx, os.LookupEnv)
		dir, err := os.MkdirTemp("", "nimbus-docker-shims")
		if err != nil {
			setupErr = err
			return
		}
		if shims, setupErr = runtime.InstallShims(dir); setupErr != nil {
			return
		}
		_, setupErr = dockerbuild.Build(ctx, dockerbuild.Config{Host: os.Getenv("DOCKER_HOST"), Interpreters: interp})
	})
	testenv.Require(t, "a usable Docker daemon (make docker starts one)", setupErr)
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// newDriver opens a docker driver in a fresh data dir with env as its
// environment, closed at the end of the test.
func newDriver(t testing.TB, env map[string]string) *docker.Driver {
	t.Helper()
	requireDocker(t)
	return openDriver(t, t.TempDir(), env)
}

func openDriver(t testing.TB, dataDir string, env map[string]string) *docker.Driver {
	t.Helper()
	lookup := func(k string) (string, bool) {
		if v, ok := env[k]; ok {
			return v, true
		}
		if k == docker.EnvPull {
			return "never", true // tests send nothing to a registry
		}
		if k == docker.EnvHost {
			return os.LookupEnv(k)
		}
		return "", false
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	d, err := docker.New(driver.Config{
		DataDir:      dataDir,
		Lookup:       lookup,
		Logger:       log,
		Interpreters: interp,
		Shims:        shims,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return d
}

// containerGone reports whether the container named in s is gone.
func containerGone(t *testing.T, s driver.Stats) bool {
	_, err := cli.ContainerInspect(context.Background(), s.ID, client.ContainerInspectOptions{})
	return err != nil
}

func TestConformance(t *testing.T) {
	requireDocker(t)
	drivertest.Run(t, func(t *testing.T) driver.Driver { return newDriver(t, nil) },
		drivertest.Options{MemoryLimit: true, Freezes: true, Gone: containerGone})
}

func TestIsolation(t *testing.T) {
	requireDocker(t)
	drivertest.RunIsolation(t, func(t *testing.T) driver.Driver { return newDriver(t, nil) },
		drivertest.IsolationOptions{MaxProcesses: 64, MemoryLimit: true})
}

func TestUnavailable(t *testing.T) {
	d, err := docker.New(driver.Config{
		DataDir: t.TempDir(),
		Lookup: func(k string) (string, bool) {
			if k == docker.EnvHost {
				return "unix:///nonexistent/docker.sock", true
			}
			return "", false
		},
		Shims: runtime.Shims{Dir: "/nonexistent"},
	})
	if err != nil {
		t.Fatalf("a driver without a daemon must open: %v", err)
	}
	defer d.Close()
	if err := d.Available(context.Background()); !errors.Is(err, fn.ErrUnavailable) {
		t.Errorf("Available: %v, want fn.ErrUnavailable", err)
	}
	f := drivertest.Function(t, runtime.Python, drivertest.Source(runtime.Python, "def handler(e, c):\n    return 1\n"))
	if _, err := d.Start(context.Background(), driver.InstanceSpec{Function: f}); !errors.Is(err, fn.ErrUnavailable) {
		t.Errorf("Start: %v, want fn.ErrUnavailable", err)
	}
}

// An OOM kill is told by the kernel's log alone, without waiting for the
// daemon's "oom" event (which may lag, or not come).
func TestOOMToldByTheKernelLog(t *testing.T) {
	requireDocker(t)
	t.Cleanup(docker.SetOOMEventWait(0))
	d := newDriver(t, nil)
	f := drivertest.Function(t, runtime.Python, drivertest.Source(runtime.Python, `
def handler(event, context):
    chunks = []
    while True:
        chunks.append(b"x" * (4 << 20))
`))
	f.Memory = 96
	in := drivertest.Start(t, d, f)
	_, err := drivertest.Invoke(in, true, 30*time.Second)
	var ee *driver.ExitError
	if !errors.As(err, &ee) || !ee.Exit.OOM {
		t.Fatalf("error %v (%T), want an OOM exit", err, err)
	}
	// The daemon's state often says so too: the kernel's log must, alone.
	if !docker.KernelSawOOM(in) {
		t.Error("the kernel's log does not tell of the OOM kill")
	}
	// A call that ended otherwise is not taken for one.
	f2 := drivertest.Function(t, runtime.Python, drivertest.Source(runtime.Python, `
import os, signal
def handler(event, context):
    os.kill(os.getpid(), signal.SIGKILL)
`))
	in2 := drivertest.Start(t, d, f2)
	if _, err := drivertest.Invoke(in2, true, 30*time.Second); !errors.As(err, &ee) || ee.Exit.OOM {
		t.Errorf("a self-inflicted SIGKILL: %v, want a crash, not OOM", err)
	}
	if docker.KernelSawOOM(in2) {
		t.Error("the kernel's log is read as an OOM kill of a process that killed itself")
	}
}

// TestProvided runs the provided runtime's cases: the relay (this test
// binary, mounted read-only) serves the Runtime API on 127.0.0.1 of the
// container's network namespace.
func TestProvided(t *testing.T) {
	requireDocker(t)
	drivertest.RunProvided(t, func(t *testing.T) driver.Driver { return newDriver(t, nil) }, drivertest.ProvidedOptions{
		Options:    drivertest.Options{MemoryLimit: true, Gone: containerGone},
		API:        runtimeapi.DefaultAddr,
		OwnNetwork: true,
	})
}
