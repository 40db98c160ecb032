package microvm

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// accel is the accelerator guests run under, and why it was chosen.
type accel struct {
	name   string // "kvm" or "tcg"
	reason string
}

// qemuArgs are the accelerator's QEMU options.
func (a accel) qemuArgs() []string {
	if a.name == "kvm" {
		return []string{"-accel", "kvm", "-cpu", "host"}
	}
	return []string{"-accel", "tcg", "-cpu", "max"}
}

// detectAccel picks hardware KVM only when a hardware KVM module is loaded
// and /dev/kvm opens: /dev/kvm alone can be a software hypervisor (kvm_pvm
// and the like) on which a stock kernel dies with "emulation failure".
// Otherwise QEMU emulates the CPU (TCG): slower, but it boots anywhere.
func detectAccel(mode, sysModule, devKVM string) accel {
	const slow = "QEMU emulates the CPU (TCG): guests boot in seconds and function code runs about 16x slower than native"
	switch mode {
	case "tcg":
		return accel{"tcg", EnvAccel + "=tcg: " + slow}
	case "kvm":
		return accel{"kvm", EnvAccel + "=kvm: hardware virtualization through " + devKVM + ", as configured"}
	}
	var hw string
	for _, m := range []string{"kvm_intel", "kvm_amd"} {
		if _, err := os.Stat(sysModule + "/" + m); err == nil {
			hw = m
			break
		}
	}
	if hw == "" {
		if _, err := os.Stat(devKVM); err == nil {
			return accel{"tcg", devKVM + " exists but neither kvm_intel nor kvm_amd is loaded, so it is not hardware virtualization (a software hypervisor cannot boot a stock kernel): " + slow}
		}
		return accel{"tcg", "no hardware virtualization (no " + devKVM + "): " + slow}
	}
	f, err := os.OpenFile(devKVM, os.O_RDWR, 0)
	if err != nil {
		why := err.Error()
		if errors.Is(err, os.ErrPermission) {
			why = devKVM + ": permission denied (add the server's user to the kvm group)"
		}
		return accel{"tcg", hw + " is loaded but " + why + ": " + slow}
	}
	f.Close()
	return accel{"kvm", "hardware virtualization (" + hw + ") through " + devKVM + ": guests run at native speed"}
}

// hostTSCkHz is the host's TSC frequency in kHz, read from /proc/cpuinfo,
// or 0. Under TCG the guest's TSC runs at the host's rate; telling the guest
// kernel (tsc_early_khz) spares it a calibration that hangs about one boot
// in three.
func hostTSCkHz() int {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "cpu MHz" {
			mhz, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || mhz <= 0 {
				return 0
			}
			return int(mhz * 1000)
		}
	}
	return 0
}

// kernelCmdline is the guest kernel's command line.
func kernelCmdline(a accel, rt string, memoryMB int) string {
	args := []string{
		"console=ttyS0", "quiet", "panic=-1", "8250.nr_uarts=1",
		"nokaslr", "mitigations=off", "cryptomgr.notests", "pci=off", "audit=0", "apparmor=0",
		"random.trust_cpu=on", "init_on_free=0", "transparent_hugepage=always",
	}
	if a.name == "tcg" {
		if khz := hostTSCkHz(); khz > 0 {
			args = append(args, fmt.Sprintf("tsc_early_khz=%d", khz))
		}
		args = append(args, "tsc=reliable", "no_timer_check")
	}
	// Unknown name=value parameters reach init in its environment.
	args = append(args, "nimbus_runtime="+rt, fmt.Sprintf("nimbus_memory=%d", memoryMB))
	return strings.Join(args, " ")
}
