package microvm_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/driver/drivertest"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// The shared suites run against one driver, so that its templates (a boot
// each, seconds under emulation) serve every case.
func TestConformance(t *testing.T) {
	d := sharedDriver(t)
	drivertest.Run(t, func(t *testing.T) driver.Driver { return d }, drivertest.Options{
		MemoryLimit: true,
		Freezes:     true,
		Gone: func(t *testing.T, s driver.Stats) bool {
			_, err := os.Stat(filepath.Join(d.RunDir(), s.ID))
			return os.IsNotExist(err)
		},
	})
}

// TestIsolation runs the confinement suite for Python only: inside the VM
// Node runs under the same init, user, limits and cgroup, and each Node
// instance is a full boot of seconds under emulation.
func TestIsolation(t *testing.T) {
	d := sharedDriver(t)
	rts := drivertest.Runtimes
	drivertest.Runtimes = []string{runtime.Python}
	t.Cleanup(func() { drivertest.Runtimes = rts })
	drivertest.RunIsolation(t, func(t *testing.T) driver.Driver { return d }, drivertest.IsolationOptions{
		MaxProcesses: 64,
		MemoryLimit:  true,
	})
}
