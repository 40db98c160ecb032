package microvm_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/driver/drivertest"
	"github.com/nimbusfaas/nimbus/internal/driver/microvm"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/testenv"
)

// requireMicroVM skips a test when QEMU or the artifacts are missing,
// except in CI, where .ci/run installs and builds them and the test must
// run.
func requireMicroVM(tb testing.TB, d *microvm.Driver) {
	tb.Helper()
	testenv.Require(tb, "the microVM driver (make microvm builds it)", d.Available(context.Background()))
}

var (
	envOnce sync.Once
	interp  runtime.Interpreters
	shims   runtime.Shims
	shimDir string // removed by TestMain
	envErr  error
)

// shared is the one driver most tests use, so that they share its
// templates: a template boot costs seconds under emulation.
var (
	sharedOnce sync.Once
	sharedDrv  *microvm.Driver
)

func hostEnv(tb testing.TB) (runtime.Interpreters, runtime.Shims) {
	tb.Helper()
	envOnce.Do(func() {
		interp, _ = runtime.FindInterpreters(context.Background(), os.LookupEnv)
		shimDir, envErr = os.MkdirTemp("", "nimbus-microvm-test-")
		if envErr != nil {
			return
		}
		shims, envErr = runtime.InstallShims(shimDir)
	})
	if envErr != nil {
		tb.Fatal(envErr)
	}
	return interp, shims
}

// newDriver opens a driver of its own, closed when the test ends.
func newDriver(tb testing.TB, env map[string]string) *microvm.Driver {
	tb.Helper()
	in, sh := hostEnv(tb)
	lookup := func(k string) (string, bool) {
		if v, ok := env[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	}
	d, err := microvm.New(driver.Config{
		DataDir:      tb.TempDir(),
		Lookup:       lookup,
		Logger:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Interpreters: in,
		Shims:        sh,
	})
	if err != nil {
		tb.Fatal(err)
	}
	requireMicroVM(tb, d)
	tb.Cleanup(func() {
		if err := d.Close(); err != nil {
			tb.Error(err)
		}
	})
	return d
}

// sharedDriver is a driver shared by the package's tests; TestMain closes it.
func sharedDriver(tb testing.TB) *microvm.Driver {
	tb.Helper()
	in, sh := hostEnv(tb)
	sharedOnce.Do(func() {
		d, err := microvm.New(driver.Config{
			DataDir:      os.TempDir(),
			Lookup:       os.LookupEnv,
			Logger:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: testLogLevel()})),
			Interpreters: in,
			Shims:        sh,
		})
		if err != nil {
			tb.Fatal(err)
		}
		sharedDrv = d
	})
	requireMicroVM(tb, sharedDrv)
	return sharedDrv
}

func TestMain(m *testing.M) {
	drivertest.StartTimeout = 3 * time.Minute // emulated CPUs on a shared machine
	code := m.Run()
	if sharedDrv != nil {
		if err := sharedDrv.Close(); err != nil {
			os.Stderr.WriteString("close driver: " + err.Error() + "\n")
			code = 1
		}
	}
	if shimDir != "" {
		os.RemoveAll(shimDir)
	}
	os.Exit(code)
}

// function builds a function for tests; TCG makes code slow, hence the
// generous timeout.
func function(name, rt, code string) *fn.Function {
	f := &fn.Function{
		ID:           fn.NewID(),
		Name:         name,
		Runtime:      rt,
		Files:        map[string]string{},
		Memory:       128,
		Timeout:      60000,
		Driver:       microvm.Name,
		Revision:     1,
		MaxInstances: 4,
	}
	if rt == runtime.Python {
		f.Handler = "main.handler"
		f.Files["main.py"] = code
	} else {
		f.Handler = "index.handler"
		f.Files["index.js"] = code
	}
	return f
}

func start(tb testing.TB, d driver.Driver, f *fn.Function) driver.Instance {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	inst, err := d.Start(ctx, driver.InstanceSpec{Function: f})
	if err != nil {
		tb.Fatalf("start %s: %v", f.Name, err)
	}
	tb.Cleanup(func() {
		inst.Kill("test over")
		<-inst.Done()
	})
	return inst
}

func invoke(tb testing.TB, inst driver.Instance, event string, timeout time.Duration) (*runtime.Response, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return inst.Invoke(ctx, driver.NewRequest(fn.NewID(), json.RawMessage(event), time.Now().Add(timeout).UnixMilli()))
}

// qemuProcesses counts running QEMU processes whose command line mentions s.
func qemuProcesses(tb testing.TB, s string) int {
	tb.Helper()
	out, _ := exec.Command("pgrep", "-f", "qemu-system.*"+s).Output()
	n := 0
	for _, b := range out {
		if b == '\n' {
			n++
		}
	}
	return n
}

// testLogLevel is debug with NIMBUS_TEST_DEBUG=1 (the guests' consoles
// included), else warnings only.
func testLogLevel() slog.Level {
	if os.Getenv("NIMBUS_TEST_DEBUG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}
