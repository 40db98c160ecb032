package sandbox_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/driver/drivertest"
	"github.com/nimbusfaas/nimbus/internal/driver/sandbox"
	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/testenv"
)

var conformance struct {
	once   sync.Once
	interp runtime.Interpreters
	shims  runtime.Shims
	err    error
}

// conformanceDriver opens a sandbox driver in a fresh data dir, with the
// host's interpreters, closed at the end of the test.
func conformanceDriver(t *testing.T) driver.Driver {
	t.Helper()
	c := &conformance
	c.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c.interp, _ = runtime.FindInterpreters(ctx, os.LookupEnv)
		dir, err := os.MkdirTemp("", "nimbus-sandbox-shims")
		if err != nil {
			c.err = err
			return
		}
		c.shims, c.err = runtime.InstallShims(dir)
	})
	if c.err != nil {
		t.Fatal(c.err)
	}
	if c.interp.Path(runtime.Python) == "" || c.interp.Path(runtime.NodeJS) == "" {
		testenv.Require(t, "python3 and node", fmt.Errorf("found %+v", c.interp))
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	d, err := sandbox.New(driver.Config{
		DataDir:      t.TempDir(),
		Lookup:       func(string) (string, bool) { return "", false },
		Logger:       log,
		Interpreters: c.interp,
		Shims:        c.shims,
	})
	if err != nil {
		t.Fatal(err)
	}
	if cl, ok := any(d).(driver.Closer); ok {
		t.Cleanup(func() { cl.Close() })
	}
	return d
}

// TestConformance runs the suite every driver passes. The out-of-memory
// case runs when the driver says it limits memory (its cgroup protection).
func TestConformance(t *testing.T) {
	drivertest.Run(t, conformanceDriver, drivertest.Options{MemoryLimit: limitsMemory(conformanceDriver(t)), Freezes: true})
}

func limitsMemory(d driver.Driver) bool {
	p, ok := d.(driver.ProtectionReporter)
	return ok && strings.Contains(p.Protections()["cgroup"], "memory")
}
