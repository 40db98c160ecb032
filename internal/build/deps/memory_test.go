package deps_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/build/deps"
	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/driver/sandbox"
	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/testenv"
)

// TestMemoryLimit: confined by the sandbox driver's cgroups to 256 MB, a
// build whose install script wants 640 MB (and would then exit 0) has it
// killed, and fails.
func TestMemoryLimit(t *testing.T) {
	testenv.RequireRoot(t)
	var c driver.Confiner = sandboxDriver(t)
	reg := newRegistry(t, answerPackage(t))
	b := newBuilder(t, runtime.NodeJS, func(cfg *deps.Config) {
		cfg.NpmRegistry = reg.URL
		cfg.Confine = c.Confine
		cfg.MemoryMB = 256
	})
	// 40 buffers of 16 MiB, every page written; then it exits 0.
	hog := `node -e 'const a = []; for (let i = 0; i < 40; i++) a.push(Buffer.alloc(16 << 20, 1))'`
	pkg := functionPackage(`"scripts": {"install": "` + strings.ReplaceAll(hog, `"`, `\"`) + `"}, `)
	_, _, err := b.Build(context.Background(), plan(t, b, runtime.NodeJS, map[string]string{"package.json": pkg}, true), nil)
	if err == nil {
		t.Fatal("a build that needs 640 MB succeeded under a limit of 256 MB")
	}
	// The script is the biggest, and the one killed: sh says "Killed", npm
	// exits 137 (128+SIGKILL). Were npm killed instead, the error would say
	// "npm was killed by signal killed".
	buildErr(t, err)
	if !strings.Contains(strings.ToLower(err.Error()), "killed") {
		t.Errorf("error %q, want the install script killed", err)
	}
}

// sandboxDriver is a sandbox driver with nothing started ahead, for its
// Confine; a host without its cgroups skips (fails under CI).
func sandboxDriver(t *testing.T) *sandbox.Driver {
	t.Helper()
	dir := t.TempDir()
	shims, err := runtime.InstallShims(filepath.Join(dir, "runtime"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{sandbox.EnvSpareSandboxes: "0", sandbox.EnvSpareWorkers: "0", sandbox.EnvZygote: "off"}
	d, err := sandbox.New(driver.Config{
		DataDir:      filepath.Join(dir, "data"),
		Lookup:       func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Interpreters: interpreters(t, runtime.NodeJS),
		Shims:        shims,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	sleep := exec.Command("sleep", "60")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleep.Process.Kill(); sleep.Wait() }()
	release, err := d.Confine(sleep.Process.Pid, 64)
	testenv.Require(t, "the sandbox driver's cgroups", err)
	sleep.Process.Kill()
	sleep.Wait()
	release()
	return d
}
