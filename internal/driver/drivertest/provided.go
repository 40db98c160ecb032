package drivertest

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/runtimeapi/runtimeapitest"
)

// ProvidedOptions says what a driver's provided runtime is checked for.
type ProvidedOptions struct {
	Options
	// API is the AWS_LAMBDA_RUNTIME_API the bootstrap must see.
	API string
	// OwnNetwork: the instance has a network namespace of its own, so its
	// Runtime API is unreachable from the host's.
	OwnNetwork bool
	// NetworkShared: a function with network: true shares the host's
	// network namespace (the sandbox's), so the driver must refuse it a
	// Runtime API; otherwise it runs in a namespace of its own too.
	NetworkShared bool
}

// RunProvided runs the provided runtime's cases: a bootstrap (the static
// Go program of runtimeapitest) speaking the Runtime API through the
// driver's relay.
func RunProvided(t *testing.T, newDriver Factory, opts ProvidedOptions) {
	code := runtimeapitest.CodeDir(t)
	d := newDriver(t)
	start := func(t *testing.T, env map[string]string, memoryMB ...int) (driver.Instance, error) {
		f := Function(t, runtime.Provided, nil)
		if len(memoryMB) > 0 {
			f.Memory = memoryMB[0]
		}
		f.Handler = "hello.handler"
		for k, v := range env {
			f.Env[k] = v
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		in, err := d.Start(ctx, driver.InstanceSpec{Function: f, Code: code})
		if err == nil {
			t.Cleanup(func() { stop(in) })
		}
		return in, err
	}
	mustStart := func(t *testing.T, env map[string]string, memoryMB ...int) driver.Instance {
		t.Helper()
		in, err := start(t, env, memoryMB...)
		if err != nil {
			t.Fatalf("start: %v", err)
		}
		return in
	}

	t.Run("Invoke", func(t *testing.T) {
		in := mustStart(t, map[string]string{"GREETING": "hi"})
		for i := range 3 { // warm calls reuse the bootstrap
			got := MustInvoke[map[string]any](t, in, map[string]any{"op": "echo", "i": i})
			if ev, _ := got["event"].(map[string]any); ev["i"] != float64(i) {
				t.Errorf("event %v", got["event"])
			}
			for k, want := range map[string]string{"handler": "hello.handler", "env": "hi", "api": opts.API} {
				if got[k] != want {
					t.Errorf("%s = %v, want %q", k, got[k], want)
				}
			}
			if id, _ := got["id"].(string); !strings.HasPrefix(id, "req-") {
				t.Errorf("request id %v", got["id"])
			}
		}
	})

	t.Run("Logs", func(t *testing.T) {
		in := mustStart(t, nil)
		resp, err := Invoke(in, map[string]any{"op": "log", "text": "hello"}, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(resp.Logs, "out: hello") || !strings.Contains(resp.Logs, "err: hello") {
			t.Errorf("logs %q", resp.Logs)
		}
	})

	t.Run("HandlerError", func(t *testing.T) {
		in := mustStart(t, nil)
		resp, err := Invoke(in, map[string]any{"op": "error"}, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		want := runtime.Error{Type: "BrokenError", Message: "it broke", Stack: "one\ntwo"}
		if resp.Error == nil || *resp.Error != want {
			t.Errorf("error %+v, want %+v", resp.Error, want)
		}
	})

	t.Run("UnknownIDs", func(t *testing.T) {
		in := mustStart(t, nil)
		got := MustInvoke[map[string]int](t, in, map[string]any{"op": "ids"})
		for k, want := range map[string]int{"unknownResponse": 400, "unknownError": 400, "lateInitError": 403, "unknownPath": 404} {
			if got[k] != want {
				t.Errorf("%s: status %d, want %d", k, got[k], want)
			}
		}
	})

	t.Run("ResponseTooLarge", func(t *testing.T) {
		// Room for 6 MB in the bootstrap and in the relay, a race-detector
		// build of the test binary in the tests.
		in := mustStart(t, nil, 1024)
		resp, err := Invoke(in, map[string]any{"op": "big", "n": runtime.DefaultResultLimit}, 60*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Error == nil || resp.Error.Type != "Function.ResponseSizeTooLarge" {
			t.Fatalf("error %+v, want Function.ResponseSizeTooLarge", resp.Error)
		}
		if got := MustInvoke[string](t, in, map[string]any{"op": "big", "n": 10}); got != "xxxxxxxxxx" {
			t.Errorf("the next call: %q", got)
		}
	})

	t.Run("InitError", func(t *testing.T) {
		_, err := start(t, map[string]string{"BOOT_MODE": "init-error", "BOOT_INIT_PRINT": "reading config"})
		var ie *driver.InitError
		if !errors.As(err, &ie) {
			t.Fatalf("start: %v, want an InitError", err)
		}
		if ie.Err.Type != "ConfigError" || ie.Err.Message != "missing setting" || !strings.Contains(ie.Logs, "reading config") {
			t.Errorf("init error %+v, logs %q", ie.Err, ie.Logs)
		}
		_, err = start(t, map[string]string{"BOOT_MODE": "exit"})
		if !errors.As(err, &ie) || ie.Err.Type != "Runtime.ExitError" {
			t.Errorf("a bootstrap that exits at init: %v, want a Runtime.ExitError InitError", err)
		}
	})

	t.Run("Crash", func(t *testing.T) {
		in := mustStart(t, nil)
		_, err := Invoke(in, map[string]any{"op": "crash", "code": 3}, 30*time.Second)
		var ee *driver.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("invoke: %v, want an ExitError", err)
		}
		if ee.Exit.Code != 3 || ee.Exit.OOM {
			t.Errorf("exit %+v, want the bootstrap's status 3", ee.Exit)
		}
		WaitDone(t, in, 30*time.Second)
	})

	t.Run("Timeout", func(t *testing.T) {
		in := mustStart(t, nil)
		_, err := Invoke(in, map[string]any{"op": "sleep", "ms": 600000}, 2*time.Second)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("invoke: %v, want the deadline", err)
		}
		WaitDone(t, in, 30*time.Second)
	})

	t.Run("OOM", func(t *testing.T) {
		if !opts.MemoryLimit {
			t.Skip("the driver sets no memory limit")
		}
		in := mustStart(t, nil)
		_, err := Invoke(in, map[string]any{"op": "alloc", "n": 1024}, 60*time.Second)
		var ee *driver.ExitError
		if !errors.As(err, &ee) || !ee.Exit.OOM {
			t.Fatalf("invoke: %v, want an ExitError with OOM", err)
		}
	})

	t.Run("Isolation", func(t *testing.T) {
		in := mustStart(t, nil)
		got := MustInvoke[map[string]string](t, in, map[string]any{"op": "netns"})
		if got["uid"] == "0" {
			t.Errorf("the bootstrap runs as root")
		}
		if !opts.OwnNetwork {
			return
		}
		host, err := os.Readlink("/proc/self/ns/net")
		if err != nil {
			t.Fatal(err)
		}
		if got["netns"] == host || got["netns"] == "" {
			t.Errorf("the bootstrap's network namespace %q is the host's %q: its Runtime API is the host's too", got["netns"], host)
		}
		f := Function(t, runtime.Provided, nil)
		f.Network = true
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		in2, err := d.Start(ctx, driver.InstanceSpec{Function: f, Code: code})
		if opts.NetworkShared {
			// A function with the host's network may not have a relay there.
			if err == nil {
				stop(in2)
				t.Fatal("a provided function with network: true started in the host's network namespace")
			}
			if !errors.Is(err, fn.ErrInvalid) {
				t.Errorf("start with network: %v, want ErrInvalid", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("start with network: %v", err)
		}
		t.Cleanup(func() { stop(in2) })
		got = MustInvoke[map[string]string](t, in2, map[string]any{"op": "netns"})
		if got["netns"] == host || got["netns"] == "" {
			t.Errorf("with network, the bootstrap's network namespace %q is the host's %q", got["netns"], host)
		}
	})
}
