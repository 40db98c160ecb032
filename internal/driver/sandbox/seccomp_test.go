package sandbox_test

import (
	"encoding/json"
	"errors"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// syscallProbe calls each x86_64 system call it is given by number with
// arguments that would make it do something harmless (or fail for a reason
// of its own), and reports the errno of each: the filter answers before
// the kernel looks at the arguments.
const syscallProbe = `
import ctypes, mmap, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

def handler(event, context):
    if event.get("i386"):
        # getpid through the i386 ABI (int 0x80, eax=20): the filter kills
        # the process rather than let other numbers mean other calls.
        code = bytes([0xB8, 0x14, 0, 0, 0, 0xCD, 0x80, 0xC3])
        m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        m.write(code)
        addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
        return ctypes.CFUNCTYPE(ctypes.c_int)(addr)()
    out = {}
    for name, nr in event["calls"].items():
        ctypes.set_errno(0)
        r = libc.syscall(ctypes.c_long(nr), ctypes.c_long(0), ctypes.c_long(0), ctypes.c_long(0), ctypes.c_long(0), ctypes.c_long(0))
        out[name] = 0 if r >= 0 else ctypes.get_errno()
    return out
`

// TestSeccompDenylist: inside a sandbox the denied calls fail with EPERM
// before the kernel sees them, clone3 with ENOSYS (so that libc falls back
// to clone, whose flags the filter can read), and a call through the i386
// ABI kills the worker. getpid, as a control, works.
func TestSeccompDenylist(t *testing.T) {
	h := newHarness(t)
	d := h.driver(t, nil)
	const (
		eperm  = 1
		enosys = 38
	)
	calls := map[string]struct{ nr, want int }{
		"getpid":          {39, 0},
		"ptrace":          {101, eperm},
		"bpf":             {321, eperm},
		"io_uring_setup":  {425, eperm},
		"kexec_load":      {246, eperm},
		"perf_event_open": {298, eperm},
		"userfaultfd":     {323, eperm},
		"keyctl":          {250, eperm},
		"unshare":         {272, eperm},
		"mount":           {165, eperm},
		"clone3":          {435, enosys},
	}
	nrs := map[string]int{}
	for name, c := range calls {
		nrs[name] = c.nr
	}
	f := h.function(runtime.Python, "seccomp", syscallProbe)
	in, err := d.Start(t.Context(), driver.InstanceSpec{Function: f})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Kill("test over")
	resp, err := invoke(in, map[string]any{"calls": nrs}, 30*time.Second)
	if err != nil || resp.Error != nil {
		t.Fatalf("probe: %v %+v", err, resp)
	}
	var got map[string]int
	if err := json.Unmarshal(resp.Result, &got); err != nil {
		t.Fatal(err)
	}
	for name, c := range calls {
		if got[name] != c.want {
			t.Errorf("%s: errno %d, want %d", name, got[name], c.want)
		}
	}

	// A kernel without the i386 ABI (no IA32 emulation, or
	// ia32_emulation=off) faults on int 0x80 before any filter runs: the
	// call cannot happen there at all, and the worker dies of SIGSEGV.
	want := "SIGSYS"
	if !hostHasI386(t, h.interp.Path(runtime.Python)) {
		want = "SIGSEGV"
		t.Log("this kernel has no i386 syscall ABI: int 0x80 faults before seccomp sees it")
	}
	_, err = invoke(in, map[string]any{"i386": true}, 30*time.Second)
	var ee *driver.ExitError
	if !errors.As(err, &ee) || ee.Exit.Signal != want {
		t.Errorf("a call through the i386 ABI: %v, want the worker killed by %s", err, want)
	}
}

// hostHasI386 reports whether the kernel serves int 0x80 (i386 system
// calls), by making one outside any sandbox.
func hostHasI386(t *testing.T, python string) bool {
	t.Helper()
	probe := syscallProbe + "\nhandler({'i386': True}, None)\n"
	err := exec.Command(python, "-c", probe).Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGSEGV {
			return false
		}
	}
	if err != nil {
		t.Fatalf("the i386 probe outside the sandbox: %v", err)
	}
	return true
}
