package microvm

import (
	"fmt"
	"path/filepath"
	"strconv"
	"time"
)

// Settings read through driver.Config.Lookup.
const (
	EnvDir         = "NIMBUS_MICROVM_DIR"          // the artifacts (default: the user's cache dir, nimbus/microvm)
	EnvQEMU        = "NIMBUS_MICROVM_QEMU"         // the QEMU binary (qemu-system-x86_64 in PATH)
	EnvAccel       = "NIMBUS_MICROVM_ACCEL"        // auto (default), kvm or tcg
	EnvOverheadMB  = "NIMBUS_MICROVM_OVERHEAD_MB"  // guest RAM on top of the function's memory (160)
	EnvBootTimeout = "NIMBUS_MICROVM_BOOT_TIMEOUT" // how long a boot may take (90s)
	EnvSnapshots   = "NIMBUS_MICROVM_SNAPSHOTS"    // 0 boots every instance afresh (1)
	EnvSpares      = "NIMBUS_MICROVM_SPARES"       // 0 keeps no Node guest booted ahead (1)
)

// options are the driver's settings.
type options struct {
	dir         string
	qemu        string
	accel       string // "auto", "kvm", "tcg"
	overheadMB  int
	bootTimeout time.Duration
	snapshots   bool
	spares      bool
}

func readOptions(lookup func(string) (string, bool), dataDir string) (options, error) {
	if lookup == nil {
		lookup = func(string) (string, bool) { return "", false }
	}
	o := options{
		dir:         DefaultDir(lookup, dataDir),
		qemu:        "qemu-system-x86_64",
		accel:       "auto",
		overheadMB:  160,
		bootTimeout: 90 * time.Second,
		snapshots:   true,
		spares:      true,
	}
	if v, ok := lookup(EnvQEMU); ok && v != "" {
		o.qemu = v
	}
	if v, ok := lookup(EnvAccel); ok && v != "" {
		switch v {
		case "auto", "kvm", "tcg":
			o.accel = v
		default:
			return o, fmt.Errorf("%s=%q: want auto, kvm or tcg", EnvAccel, v)
		}
	}
	if v, ok := lookup(EnvOverheadMB); ok && v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 32 {
			return o, fmt.Errorf("%s=%q: want a number of MB, at least 32", EnvOverheadMB, v)
		}
		o.overheadMB = n
	}
	if v, ok := lookup(EnvBootTimeout); ok && v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return o, fmt.Errorf("%s=%q: want a duration such as 90s", EnvBootTimeout, v)
		}
		o.bootTimeout = d
	}
	for _, b := range []struct {
		env string
		to  *bool
	}{{EnvSnapshots, &o.snapshots}, {EnvSpares, &o.spares}} {
		if v, ok := lookup(b.env); ok && v != "" {
			on, err := strconv.ParseBool(v)
			if err != nil {
				return o, fmt.Errorf("%s=%q: want 0 or 1", b.env, v)
			}
			*b.to = on
		}
	}
	return o, nil
}

// DefaultDir is where the artifacts are looked for and built: EnvDir, or
// nimbus/microvm in the user's cache directory ($XDG_CACHE_HOME or
// ~/.cache), or else microvm in the data directory. One build then serves
// every server of the user, whatever its data directory.
func DefaultDir(lookup func(string) (string, bool), dataDir string) string {
	if v, ok := lookup(EnvDir); ok && v != "" {
		return v
	}
	if v, ok := lookup("XDG_CACHE_HOME"); ok && filepath.IsAbs(v) {
		return filepath.Join(v, "nimbus", "microvm")
	}
	if v, ok := lookup("HOME"); ok && filepath.IsAbs(v) {
		return filepath.Join(v, ".cache", "nimbus", "microvm")
	}
	return filepath.Join(dataDir, "microvm")
}
