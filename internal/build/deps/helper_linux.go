package deps

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// helperName is the argv[0] the server gives its own binary when it starts
// it as a build's helper (the "reexec" pattern): the init below sees it
// and never returns to main. It works in test binaries too.
const helperName = "nimbus-build-sandbox"

// helperSpecFD is where the helper reads its spec, to EOF.
const helperSpecFD = 3

// helperFailed is the helper's exit status when it could not set the
// sandbox up; what failed is on its stderr, the build's output.
const helperFailed = 125

func init() {
	if len(os.Args) == 0 || os.Args[0] != helperName {
		return
	}
	// Credentials changed by raw system calls belong to this thread, the
	// one that execs the build.
	goruntime.LockOSThread()
	// A raw exit: nothing to flush, and a race-detector build would
	// otherwise sleep a second before exiting.
	unix.Exit(helperMain())
}

// helperMain waits for its spec (sent once the server has confined this
// process), builds the sandbox it describes, becomes the build user and
// execs the build. With the sandbox, it runs as PID 1 of a new PID
// namespace, and so does the build after the exec: when the build's
// command exits, the kernel kills whatever it left behind.
func helperMain() int {
	fail := func(step string, err error) int {
		fmt.Fprintf(os.Stderr, "nimbus build sandbox: %s: %v\n", step, err)
		return helperFailed
	}
	var sp sandboxSpec
	f := os.NewFile(helperSpecFD, "spec")
	if err := json.NewDecoder(f).Decode(&sp); err != nil {
		return fail("read spec", err)
	}
	f.Close()
	if sp.Isolate {
		if err := buildRoot(&sp); err != nil {
			return fail("root", err)
		}
		if err := unix.Sethostname([]byte("nimbus-build")); err != nil {
			return fail("hostname", err)
		}
		if sp.Loopback {
			if err := loopbackUp(); err != nil {
				return fail("loopback", err)
			}
		}
		// No set-user-ID program or file capability gives anything back.
		if err := prctl(unix.PR_SET_NO_NEW_PRIVS, 1); err != nil {
			return fail("no_new_privs", err)
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0); e != 0 {
			return fail("setgroups", e)
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(sp.GID), uintptr(sp.GID), uintptr(sp.GID)); e != 0 {
			return fail("setresgid", e)
		}
		// From root to another uid: every capability goes.
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(sp.UID), uintptr(sp.UID), uintptr(sp.UID)); e != 0 {
			return fail("setresuid", e)
		}
		// A change of credentials clears the parent-death signal.
		if err := prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL)); err != nil {
			return fail("pdeathsig", err)
		}
	}
	if err := unix.Chdir(sp.Dir); err != nil {
		return fail("chdir "+sp.Dir, err)
	}
	err := syscall.Exec(sp.Path, sp.Args, sp.Env)
	return fail("exec "+sp.Path, err)
}

// buildRoot makes the root sp plans this process's root, in its own mount
// namespace: a tmpfs with the planned directories, links and files, the
// binds, a private /tmp and /proc, made read-only, then pivoted into; the
// host's root is detached.
func buildRoot(sp *sandboxSpec) error {
	// Nothing done here may propagate back to the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	r := sp.Root
	if err := unix.Mount("tmpfs", r, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=1m,nr_inodes=4096,mode=755"); err != nil {
		return fmt.Errorf("mount root tmpfs on %s: %w", r, err)
	}
	for _, d := range sp.Dirs {
		if err := os.MkdirAll(filepath.Join(r, d), 0o755); err != nil {
			return err
		}
	}
	for _, l := range sp.Symlinks {
		p := filepath.Join(r, l.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.Symlink(l.Target, p); err != nil {
			return err
		}
	}
	for _, f := range sp.Files {
		p := filepath.Join(r, f.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(f.Content), 0o644); err != nil {
			return err
		}
	}
	// /tmp before the binds: a bind below it (a work directory in /tmp)
	// stays visible.
	opts := "mode=1777,size=" + strconv.FormatInt(sp.TmpBytes, 10)
	if err := unix.Mount("tmpfs", filepath.Join(r, "tmp"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount /tmp: %w", err)
	}
	for _, b := range sp.Binds {
		if err := bindMount(b, r); err != nil {
			return err
		}
	}
	// The new PID namespace's /proc: the build sees its own processes
	// only, not the host's (nor function instances', which may run as the
	// same uid).
	if err := unix.Mount("proc", filepath.Join(r, "proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	if err := unix.Mount("", r, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("make root read-only: %w", err)
	}
	// pivot_root(".", ".") stacks the old root on top of the new one;
	// detaching it leaves only the new root.
	if err := unix.Chdir(r); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	return unix.Chdir("/")
}

// bindMount binds b.Src at the same path under root.
func bindMount(b bind, root string) error {
	dst := filepath.Join(root, b.Src)
	fi, err := os.Stat(b.Src)
	if err != nil {
		return fmt.Errorf("bind %s: %w", b.Src, err)
	}
	if fi.IsDir() {
		err = os.MkdirAll(dst, 0o755)
	} else if err = os.MkdirAll(filepath.Dir(dst), 0o755); err == nil {
		var f *os.File
		if f, err = os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			f.Close()
		}
	}
	if err != nil {
		return fmt.Errorf("bind %s: mount point: %w", b.Src, err)
	}
	if err := unix.Mount(b.Src, dst, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s: %w", b.Src, err)
	}
	if b.Device {
		return nil
	}
	flags := uintptr(unix.MS_REMOUNT | unix.MS_BIND | unix.MS_NOSUID | unix.MS_NODEV)
	if !b.RW {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount("", dst, "", flags, ""); err != nil {
		return fmt.Errorf("remount %s: %w", b.Src, err)
	}
	return nil
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

// prctl is a raw per-thread prctl with one argument.
func prctl(option int, arg uintptr) error {
	_, _, e := unix.RawSyscall6(unix.SYS_PRCTL, uintptr(option), arg, 0, 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}
