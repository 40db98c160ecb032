package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// buildRoot carries out sp's file-system plan in the helper's new mount
// namespace and makes the result its root: a read-only tmpfs holding only
// the mount points and files of the plan, the binds, the host's package
// directories masked (packages.go), a private writable
// /tmp of sp.TmpBytes and a fresh /proc of the new PID namespace. The old
// root is detached, so nothing else of the host is reachable.
func buildRoot(sp *spec) error {
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
		if err := os.WriteFile(p, []byte(f.Content), os.FileMode(f.Mode)); err != nil {
			return err
		}
	}
	for _, b := range sp.Binds {
		if err := bindMount(b, r); err != nil {
			return err
		}
	}
	for _, m := range sp.Masks {
		if err := maskDir(m, r); err != nil {
			return err
		}
	}
	tmp := filepath.Join(r, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	opts := "mode=1777,size=" + strconv.FormatInt(sp.TmpBytes, 10)
	if err := unix.Mount("tmpfs", tmp, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount /tmp: %w", err)
	}
	proc := filepath.Join(r, "proc")
	if err := os.MkdirAll(proc, 0o555); err != nil {
		return err
	}
	if err := unix.Mount("proc", proc, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
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

// bindMount binds b.Src at b.Dst under root, read-only unless b.RW, never
// with set-user-ID programs or device files unless b.RW (which is only for
// device nodes such as /dev/null).
func bindMount(b bindSpec, root string) error {
	dst := filepath.Join(root, b.Dst)
	fi, err := os.Stat(b.Src)
	if err != nil {
		return fmt.Errorf("bind %s: %w", b.Src, err)
	}
	if fi.IsDir() {
		err = os.MkdirAll(dst, 0o755)
	} else {
		if err = os.MkdirAll(filepath.Dir(dst), 0o755); err == nil {
			var f *os.File
			if f, err = os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
				f.Close()
			}
		}
	}
	if err != nil {
		return fmt.Errorf("bind %s: mount point: %w", b.Src, err)
	}
	if err := unix.Mount(b.Src, dst, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", b.Src, b.Dst, err)
	}
	if b.RW {
		return nil
	}
	flags := uintptr(unix.MS_REMOUNT | unix.MS_BIND | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV)
	// A remount must keep the flags the kernel locked on the source mount
	// (in a user namespace): carry over what it has.
	var st unix.Statfs_t
	if unix.Statfs(dst, &st) == nil {
		flags |= uintptr(st.Flags) & (unix.MS_NOEXEC | unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME)
	}
	if err := unix.Mount("", dst, "", flags, ""); err != nil {
		return fmt.Errorf("make %s read-only: %w", b.Dst, err)
	}
	return nil
}

// maskFlags are a mask's mount flags: an empty directory, nothing to run.
const maskFlags = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC

// maskOptions are a mask's tmpfs options: room for the mount points of
// what it keeps, and no more.
const maskOptions = "size=16k,nr_inodes=64,mode=755"

// maskDir hides m.Path under root with an empty read-only tmpfs, binding
// back what m keeps.
func maskDir(m mask, root string) error {
	dst := filepath.Join(root, m.Path)
	if _, err := os.Stat(dst); errors.Is(err, os.ErrNotExist) {
		return nil // gone since the plan: nothing to hide
	}
	if len(m.Keep) == 0 {
		if err := unix.Mount("tmpfs", dst, "tmpfs", maskFlags|unix.MS_RDONLY, maskOptions); err != nil {
			return fmt.Errorf("mask %s: %w", m.Path, err)
		}
		return nil
	}
	if err := unix.Mount("tmpfs", dst, "tmpfs", maskFlags, maskOptions); err != nil {
		return fmt.Errorf("mask %s: %w", m.Path, err)
	}
	for _, k := range m.Keep {
		if err := bindMount(bindSpec{Src: k, Dst: k}, root); err != nil {
			return fmt.Errorf("mask %s: %w", m.Path, err)
		}
	}
	if err := unix.Mount("", dst, "", unix.MS_REMOUNT|unix.MS_RDONLY|maskFlags, maskOptions); err != nil {
		return fmt.Errorf("mask %s: make it read-only: %w", m.Path, err)
	}
	return nil
}
