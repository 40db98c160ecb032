package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	goruntime "runtime"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// helperName is the argv[0] the server gives its own binary when it starts
// it as an instance's init helper (the "reexec" pattern): the init below
// sees it and never returns to main. It also works in test binaries.
const helperName = "nimbus-sandbox-init"

// The helper's file descriptors, as the server passes them.
const (
	helperReqFD    = 3 // the protocol pipes, kept at 3 and 4 for the interpreter
	helperRespFD   = 4
	helperSpecFD   = 5 // spec JSON, read to EOF
	helperStatusFD = 6 // helperStatus lines to the server
)

// Exit codes of the helper itself (the interpreter's are reported on the
// status pipe).
const helperFailed = 125

func init() {
	if len(os.Args) == 0 || os.Args[0] != helperName {
		return
	}
	// Capabilities, no_new_privs and seccomp are per thread: every step
	// runs on this one, and the interpreter is forked from it.
	goruntime.LockOSThread()
	// A raw exit: nothing to flush, and a race-detector build would
	// otherwise sleep a second before exiting.
	unix.Exit(helperMain())
}

// helperMain runs as PID 1 of the instance's new namespaces, as root (or
// as the mapped user with ambient capabilities in a user namespace). It
// builds the root, brings lo up, sets limits, drops every privilege, loads
// the seccomp filter, waits to be told what to run, becomes the sandbox
// user and execs /bin/sh as the namespace's init: the shell runs the
// interpreter, reaps orphans and reports how the interpreter ended (without
// a shell, the helper does that itself). When the init exits, the kernel
// kills everything left in the PID namespace.
func helperMain() int {
	status := os.NewFile(helperStatusFD, "status")
	report := func(s helperStatus) {
		b, _ := json.Marshal(s)
		_, _ = status.Write(append(b, '\n'))
	}
	fail := func(step string, err error) int {
		report(helperStatus{Error: step + ": " + err.Error()})
		return helperFailed
	}
	debug.SetGCPercent(-1) // a few allocations; no collector needed
	unix.CloseOnExec(helperStatusFD)

	var sp spec
	sf := os.NewFile(helperSpecFD, "spec")
	dec := json.NewDecoder(sf)
	if err := dec.Decode(&sp); err != nil {
		return fail("read spec", err)
	}
	if err := buildRoot(&sp); err != nil {
		return fail("root", err)
	}
	if sp.Loopback {
		if err := loopbackUp(); err != nil {
			return fail("loopback", err)
		}
	}
	if sp.Hostname != "" {
		if err := unix.Sethostname([]byte(sp.Hostname)); err != nil {
			return fail("hostname", err)
		}
	}
	for _, r := range sp.Rlimits {
		if err := unix.Setrlimit(r.Resource, &unix.Rlimit{Cur: r.Cur, Max: r.Max}); err != nil {
			return fail(fmt.Sprintf("rlimit %d", r.Resource), err)
		}
	}
	if err := dropBoundingSet(); err != nil {
		return fail("capabilities", err)
	}
	if err := prctl(unix.PR_SET_NO_NEW_PRIVS, 1); err != nil {
		return fail("no_new_privs", err)
	}
	if sp.Seccomp {
		if err := loadSeccomp(); err != nil {
			return fail("seccomp", err)
		}
	}
	report(helperStatus{Ready: true})
	var run runSpec
	err := dec.Decode(&run)
	sf.Close()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return 0 // a spare sandbox no longer needed
		}
		return fail("read run spec", err)
	}
	if run.Path == "" && !run.Hold {
		report(helperStatus{Probe: true})
		return 0
	}
	// From here on, the sandbox user for good: the interpreter and its init
	// both run as it. Going from root to another uid clears the
	// capabilities; in a user namespace the exec below does.
	// Raw calls change this thread only, the one that execs or forks next
	// (Go's own would stop every thread of the runtime to change them all).
	if sp.SetGroups {
		if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0); e != 0 {
			return fail("setgroups", e)
		}
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(sp.GID), uintptr(sp.GID), uintptr(sp.GID)); e != 0 {
		return fail("setresgid", e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(sp.UID), uintptr(sp.UID), uintptr(sp.UID)); e != 0 {
		return fail("setresuid", e)
	}
	// A change of credentials clears the parent-death signal.
	if err := prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL)); err != nil {
		return fail("pdeathsig", err)
	}
	if err := unix.Chdir(run.Dir); err != nil {
		return fail("chdir "+run.Dir, err)
	}
	if run.Hold {
		return holdInit(fail)
	}
	if _, err := os.Stat(initShell); err == nil {
		return execShellInit(run, fail)
	}
	return goInit(sp, run, fail, report)
}

// holdScript holds a sandbox for a worker that joins it from outside (the
// Python zygote's): as the namespace's init, the shell waits for ever on a
// subshell blocked on a pipe only they hold ($1), reaping orphans while it
// waits, and starts another if a function kills it. It closes the protocol
// pipes it was started with: the worker has its own.
const holdScript = `exec 3<&- 4>&-; while :; do (read x <&"$1") & wait; done`

// holdInit replaces the helper with the init shell holding the sandbox;
// without a shell, the helper holds it itself, reaping.
func holdInit(fail func(string, error) int) int {
	if _, err := os.Stat(initShell); err != nil {
		unix.Close(helperReqFD)
		unix.Close(helperRespFD)
		for {
			var ws syscall.WaitStatus
			if _, err := syscall.Wait4(-1, &ws, 0, nil); err != nil && !errors.Is(err, syscall.EINTR) {
				// No child: wait for one to be reparented here.
				time.Sleep(time.Second)
			}
		}
	}
	// Closed first: the pipe may take its number, as it would be closed
	// after (the shell's reader then failed at once, and the shell spun).
	unix.Close(helperSpecFD)
	var p [2]int
	if err := unix.Pipe(p[:]); err != nil { // inherited by the shell: no close-on-exec
		return fail("pipe", err)
	}
	if _, err := unix.FcntlInt(helperStatusFD, unix.F_SETFD, 0); err != nil {
		return fail("status fd", err)
	}
	argv := []string{"sh", "-c", holdScript, helperName, strconv.Itoa(p[0])}
	err := syscall.Exec(initShell, argv, []string{"PATH=/usr/bin:/bin"})
	return fail("exec "+initShell, err)
}

// initShell runs as the instance's init when the root has it: after its
// exec this process holds no Go runtime (megabytes, and threads that count
// against the pids limit) for the instance's whole life.
const initShell = "/bin/sh"

// initScript runs the interpreter in the foreground, reaping orphans while
// it waits (a POSIX shell's wait reaps any child), then reports its exit
// status: the code, or 128 plus the signal that killed it. dash adds PWD
// to its children's environment unless it is unset.
const initScript = `unset PWD; "$@" 6>&-; printf '{"shellExit":%d}\n' "$?" >&6`

// execShellInit replaces the helper with the init shell.
func execShellInit(run runSpec, fail func(string, error) int) int {
	if _, err := unix.FcntlInt(helperStatusFD, unix.F_SETFD, 0); err != nil {
		return fail("status fd", err)
	}
	unix.Close(helperSpecFD)
	argv := append([]string{"sh", "-c", initScript, helperName, run.Path}, run.Args[1:]...)
	err := syscall.Exec(initShell, argv, run.Env)
	return fail("exec "+initShell, err)
}

// goInit starts the interpreter and stays as its init, for a root without
// a shell.
func goInit(sp spec, run runSpec, fail func(string, error) int, report func(helperStatus)) int {
	pid, err := syscall.ForkExec(run.Path, run.Args, &syscall.ProcAttr{
		Dir:   run.Dir,
		Env:   run.Env,
		Files: []uintptr{0, 1, 2, helperReqFD, helperRespFD},
	})
	if err != nil {
		return fail("start "+run.Path, err)
	}
	// The interpreter holds the protocol pipes now. This process lives on:
	// its other threads drop their privileges too.
	unix.Close(helperReqFD)
	unix.Close(helperRespFD)
	if sp.SetGroups {
		_ = syscall.Setgroups([]int{})
	}
	_ = syscall.Setresgid(sp.GID, sp.GID, sp.GID)
	_ = syscall.Setresuid(sp.UID, sp.UID, sp.UID)
	_ = prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL))
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT,
		syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGPIPE)
	for {
		var ws syscall.WaitStatus
		wpid, err := syscall.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return fail("wait", err)
		}
		if wpid != pid {
			continue // an orphan reparented to us
		}
		ex := &helperExit{Code: ws.ExitStatus()}
		if ws.Signaled() {
			ex.Code = -1
			ex.Signal = unix.SignalName(ws.Signal())
		}
		report(helperStatus{Exit: ex})
		return 0
	}
}

// loopbackUp brings the network namespace's lo interface up.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// dropBoundingSet empties this thread's capability bounding set and its
// ambient and inheritable sets, so that nothing it starts can ever gain a
// capability back. The effective set stays: the fork that starts the
// interpreter needs CAP_SETUID and CAP_SETGID, and the change to a non-root
// uid there clears it.
func dropBoundingSet() error {
	for c := 0; c <= unix.CAP_LAST_CAP+8; c++ {
		if err := prctl(unix.PR_CAPBSET_DROP, uintptr(c)); err != nil {
			if errors.Is(err, unix.EINVAL) {
				break // past the kernel's last capability
			}
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
		}
	}
	if err := prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	data[0].Inheritable, data[1].Inheritable = 0, 0
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("clear inheritable capabilities: %w", err)
	}
	return nil
}

// prctl is a raw per-thread prctl with one argument.
func prctl(option int, arg uintptr) error {
	_, _, e := unix.RawSyscall6(unix.SYS_PRCTL, uintptr(option), arg, 0, 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}
