package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// Mounting a function's code into a sandbox built before the function was
// known. The sandbox's root is the helper's, in its own mount namespace,
// finished and locked down: the helper can no longer mount, and its
// interpreter may already run (a spare worker). So the server mounts from
// outside. open_tree clones the code directory as a detached mount in the
// server's namespace; a thread of the server enters the sandbox's mount
// namespace, moves the clone onto the mount point, makes it read-only and
// goes back. Nothing is copied, nothing appears in the host's mount
// table, and the mounts go when the sandbox's namespace does. It needs
// Linux 5.2 and root in the host's user namespace: a server in a user
// namespace copies the code instead (isolation.codeMounts is off).
//
// That thread is one for the life of the process (the mounter). setns into
// a mount namespace needs a thread that shares no file-system attributes
// (unshare(CLONE_FS)), and such a thread must never run other goroutines:
// its working directory is no longer the process's. Nor may it exit: a
// child started with a parent-death signal (every helper) gets it when the
// thread that forked it ends, and the Go runtime may have forked helpers
// from the very thread the mounter was given.

// treeMount is a host directory to mount, read-only, at Dst inside a
// sandbox; Dst must exist there.
type treeMount struct {
	Src, Dst string
}

// mountFlags are the flags of a mounted code or layer directory: read-only,
// no set-user-ID programs, no devices; executables run (a bundled binary,
// Lambda's provided runtimes).
const mountFlags = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV

// mountRequest asks the mounter to mount the detached trees fds at trees'
// destinations and mask masks in the mount namespace ns.
type mountRequest struct {
	ns    *os.File
	fds   []int
	trees []treeMount
	masks []string
	done  chan error
}

var mounter struct {
	once sync.Once
	reqs chan mountRequest
}

// runMounter is the mounter's goroutine, locked to its thread for good.
func runMounter(reqs <-chan mountRequest) {
	goruntime.LockOSThread()
	host, err := os.Open("/proc/thread-self/ns/mnt")
	if err == nil {
		if err = unix.Unshare(unix.CLONE_FS); err != nil {
			err = fmt.Errorf("unshare file-system attributes: %w", err)
		}
	}
	for r := range reqs {
		if err != nil {
			r.done <- err
			continue
		}
		r.done <- r.run(int(host.Fd()))
	}
}

// run carries out r from the host's mount namespace, host, and returns to
// it.
func (r mountRequest) run(host int) (err error) {
	if err := unix.Setns(int(r.ns.Fd()), unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("enter the sandbox's mount namespace: %w", err)
	}
	defer func() {
		if berr := unix.Setns(host, unix.CLONE_NEWNS); berr != nil {
			err = errors.Join(err, fmt.Errorf("return to the host's mount namespace: %w", berr))
		}
	}()
	for i, t := range r.trees {
		if err := unix.MoveMount(r.fds[i], "", unix.AT_FDCWD, t.Dst, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
			return fmt.Errorf("mount %s on %s: %w", t.Src, t.Dst, err)
		}
		if err := unix.Mount("", t.Dst, "", unix.MS_REMOUNT|unix.MS_BIND|mountFlags, ""); err != nil {
			return fmt.Errorf("make %s read-only: %w", t.Dst, err)
		}
	}
	for _, m := range r.masks {
		err := unix.Mount("tmpfs", m, "tmpfs", maskFlags|unix.MS_RDONLY, maskOptions)
		if err != nil && !errors.Is(err, unix.ENOENT) { // gone again: nothing to hide
			return fmt.Errorf("mask %s: %w", m, err)
		}
	}
	return nil
}

// mountInto mounts trees read-only and masks masks (see maskDir) in the
// mount namespace of process pid, in order.
func mountInto(pid int, trees []treeMount, masks []string) error {
	mounter.once.Do(func() {
		mounter.reqs = make(chan mountRequest)
		go runMounter(mounter.reqs)
	})
	fds := make([]int, 0, len(trees))
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	for _, t := range trees {
		fd, err := unix.OpenTree(unix.AT_FDCWD, t.Src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
		if err != nil {
			return fmt.Errorf("clone %s: %w", t.Src, err)
		}
		fds = append(fds, fd)
	}
	ns, err := os.Open("/proc/" + strconv.Itoa(pid) + "/ns/mnt")
	if err != nil {
		return err
	}
	defer ns.Close()
	r := mountRequest{ns: ns, fds: fds, trees: trees, masks: masks, done: make(chan error, 1)}
	mounter.reqs <- r
	return <-r.done
}

// canMountInto reports whether mountInto works on this host: the server is
// root and the kernel has open_tree (Linux 5.2). dir is a directory to
// try it on.
func canMountInto(dir string) error {
	if os.Geteuid() != 0 {
		return errors.New("the server is not root")
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, filepath.Clean(dir), unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("open_tree: %w", err)
	}
	unix.Close(fd)
	return nil
}
