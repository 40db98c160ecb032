package sandbox_test

import (
	"testing"

	"github.com/nimbusfaas/nimbus/internal/driver/drivertest"
	"github.com/nimbusfaas/nimbus/internal/runtimeapi"
)

// TestProvided runs the provided runtime's cases: the relay (this test
// binary, bound into the sandbox) serves the Runtime API on 127.0.0.1 of
// the instance's own network namespace.
func TestProvided(t *testing.T) {
	drivertest.RunProvided(t, conformanceDriver, drivertest.ProvidedOptions{
		Options:       drivertest.Options{MemoryLimit: limitsMemory(conformanceDriver(t))},
		API:           runtimeapi.DefaultAddr,
		OwnNetwork:    true,
		NetworkShared: true,
	})
}
