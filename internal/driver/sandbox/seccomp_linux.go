package sandbox

import (
	"fmt"
	goruntime "runtime"
	"syscall"
	"unsafe"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// deniedSyscalls fail with EPERM inside a sandbox: they change what the
// kernel lets the process see or do (mounts, namespaces, modules, keys,
// kexec, BPF, tracing other processes, swap, reboot, accounting, clocks),
// or are large attack surfaces no function needs (userfaultfd, io_uring,
// perf events, open_by_handle_at). Most already need a capability the
// instance does not have: the filter is a second wall, and the only one for
// the calls an unprivileged process may make (unshare of a user namespace,
// userfaultfd, io_uring, perf_event_open, keyctl, bpf, ptrace).
var deniedSyscalls = []string{
	// mounts and the root
	"mount", "umount2", "pivot_root", "chroot", "mount_setattr", "move_mount",
	"open_tree", "fsopen", "fsconfig", "fsmount", "fspick",
	// namespaces: unshare is refused whatever its flags; clone below only
	// with namespace flags
	"unshare", "setns",
	// kernel, modules, kexec, reboot, swap, accounting
	"init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
	"reboot", "swapon", "swapoff", "acct", "syslog", "quotactl", "quotactl_fd",
	"iopl", "ioperm", "vhangup", "sysfs", "ustat", "uselib", "personality",
	"lookup_dcookie", "nfsservctl", "_sysctl", "create_module", "get_kernel_syms",
	"query_module", "modify_ldt",
	// keys
	"keyctl", "add_key", "request_key",
	// BPF, perf, tracing and other processes' memory
	"bpf", "perf_event_open", "ptrace", "process_vm_readv", "process_vm_writev",
	"kcmp", "pidfd_getfd", "process_madvise",
	// file handles bypass path permissions
	"open_by_handle_at", "name_to_handle_at",
	// large attack surfaces
	"userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
	"fanotify_init",
	// clocks and NUMA placement of other processes
	"settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
	"move_pages", "migrate_pages",
}

// namespaceCloneFlags are the clone(2) flags that create namespaces.
// CLONE_NEWTIME is left out: in clone(2) its bit is part of the exit
// signal.
const namespaceCloneFlags = unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS |
	unix.CLONE_NEWIPC | unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET

const (
	auditArchX86_64  = 0xc000003e
	seccompRetErrno  = 0x00050000
	seccompRetKill   = 0x80000000 // SECCOMP_RET_KILL_PROCESS
	seccompDataArch  = 4          // offsetof(struct seccomp_data, arch)
	seccompSetFilter = 1          // SECCOMP_SET_MODE_FILTER
)

// seccompPolicy is the filter as a policy of the elastic/go-seccomp-bpf
// library: allow by default, EPERM for the calls above and for clone with
// namespace flags, ENOSYS for clone3 (its flags are behind a pointer the
// filter cannot read; libc then falls back to clone, which it can).
func seccompPolicy() seccomp.Policy {
	return seccomp.Policy{
		DefaultAction: seccomp.ActionAllow,
		Syscalls: []seccomp.SyscallGroup{
			{Action: seccomp.ActionErrno, Names: deniedSyscalls},
			{
				Action: seccomp.ActionErrno,
				NamesWithCondtions: []seccomp.NameWithConditions{{
					Name: "clone",
					Conditions: []seccomp.Condition{{
						Argument: 0, Operation: seccomp.BitsSet, Value: namespaceCloneFlags,
					}},
				}},
			},
			{Action: seccomp.Action(uint32(seccomp.ActionErrno) | uint32(unix.ENOSYS)), Names: []string{"clone3"}},
		},
	}
}

// seccompProgram assembles the filter. The library's program allows every
// call of a foreign architecture when the default action is allow, so a
// check of our own comes first: a call that is not native x86_64 (the i386
// int 0x80 ABI, say, where the numbers differ) kills the process. The
// library's program itself refuses the x32 ABI with ENOSYS.
func seccompProgram() ([]unix.SockFilter, error) {
	if goruntime.GOARCH != "amd64" {
		return nil, fmt.Errorf("the seccomp filter is written for x86_64, not %s", goruntime.GOARCH)
	}
	pol := seccompPolicy()
	insts, err := pol.Assemble()
	if err != nil {
		return nil, err
	}
	archCheck := []bpf.Instruction{
		bpf.LoadAbsolute{Off: seccompDataArch, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: auditArchX86_64, SkipTrue: 1},
		bpf.RetConstant{Val: seccompRetKill},
	}
	raw, err := bpf.Assemble(append(archCheck, insts...))
	if err != nil {
		return nil, err
	}
	prog := make([]unix.SockFilter, len(raw))
	for i, in := range raw {
		prog[i] = unix.SockFilter{Code: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	return prog, nil
}

// loadSeccomp loads the filter on the calling thread; the process it forks
// inherits it, and no one can remove it. no_new_privs must be set.
func loadSeccomp() error {
	prog, err := seccompProgram()
	if err != nil {
		return err
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	_, _, e := unix.RawSyscall(unix.SYS_SECCOMP, seccompSetFilter, 0, uintptr(unsafe.Pointer(&fprog)))
	goruntime.KeepAlive(prog)
	if e != 0 {
		return syscall.Errno(e)
	}
	return nil
}
