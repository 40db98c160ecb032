package deps

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// install seals the layer a build made at src and moves it to dst: its
// files become root's (when the server is root) and read-only, 0444, or
// 0555 when executable; directories 0555; anything but files, directories
// and symbolic links (a FIFO, a socket) is removed, and so is a link that
// leads out of the layer (absolute, or up past its top), which whoever
// copies the layer later could follow to a file of the host. The rename is
// atomic: dst is complete or absent. Another process that installed dst
// first wins.
func (b *Builder) install(src, dst string, out *output) error {
	var dirs, links []string
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		mode := fi.Mode()
		if !mode.IsDir() && !mode.IsRegular() && mode&fs.ModeSymlink == 0 {
			return os.Remove(p)
		}
		if b.isolate {
			if err := os.Lchown(p, 0, 0); err != nil {
				return err
			}
		} else if mode.IsDir() {
			// The build's user is ours: it may have left directories we
			// cannot read.
			if err := os.Chmod(p, 0o755); err != nil {
				return err
			}
		}
		switch {
		case mode&fs.ModeSymlink != 0: // a link has no mode of its own
			links = append(links, p)
		case mode.IsDir():
			dirs = append(dirs, p)
		case mode&0o111 != 0:
			return os.Chmod(p, 0o555)
		default:
			return os.Chmod(p, 0o444)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("seal the layer: %w", err)
	}
	top, err := filepath.EvalSymlinks(src) // as links resolve
	if err != nil {
		return fmt.Errorf("seal the layer: %w", err)
	}
	for _, l := range links {
		target, _ := os.Readlink(l)
		real, err := filepath.EvalSymlinks(l)
		if filepath.IsAbs(target) || err != nil || !within(top, real) {
			if err := os.Remove(l); err != nil {
				return fmt.Errorf("seal the layer: %w", err)
			}
			rel, _ := filepath.Rel(src, l)
			out.note("removed %s: a link to %s, out of the layer", rel, target)
		}
	}
	// Deepest first; the top last, once in place (a directory that moves
	// must be writable by a mover that is not root).
	for _, d := range slices.Backward(dirs[1:]) {
		if err := os.Chmod(d, 0o555); err != nil {
			return fmt.Errorf("seal the layer: %w", err)
		}
	}
	if err := os.Rename(src, dst); err != nil {
		if isDir(dst) && (errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTEMPTY)) {
			return nil
		}
		return fmt.Errorf("install the layer: %w", err)
	}
	if err := os.Chmod(dst, 0o555); err != nil {
		return fmt.Errorf("seal the layer: %w", err)
	}
	return nil
}

// within reports whether p is dir or inside it.
func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// Collect removes every layer whose key keep lacks, except those being
// built or waited for now, and what builds that did not finish (a crash)
// left in the tmp directory. It returns the keys removed. A layer is
// removed by moving it out of place first, so a Build never sees half of
// one; but a layer Build has just returned is safe only if its key is in
// keep.
func (b *Builder) Collect(keep map[string]bool) (removed []string, err error) {
	entries, err := os.ReadDir(b.dir)
	if err != nil {
		return nil, fmt.Errorf("deps: collect: %w", err)
	}
	var errs []error
	for _, e := range entries {
		key := e.Name()
		if !isKey(key) || keep[key] || !e.IsDir() {
			continue
		}
		b.mu.Lock()
		if b.keys[key] != nil {
			b.mu.Unlock()
			continue
		}
		gone := "collect-" + rand.Text()
		b.inProcess[gone] = true
		err := moveOut(b.Dir(key), filepath.Join(b.tmp, gone))
		b.mu.Unlock()
		if err == nil {
			err = removeTree(filepath.Join(b.tmp, gone))
			removed = append(removed, key)
		}
		b.mu.Lock()
		delete(b.inProcess, gone)
		b.mu.Unlock()
		if err != nil {
			errs = append(errs, err)
		}
	}
	tmp, err := os.ReadDir(b.tmp)
	if err != nil {
		errs = append(errs, err)
	}
	for _, e := range tmp {
		b.mu.Lock()
		busy := b.inProcess[e.Name()]
		b.mu.Unlock()
		if !busy {
			if err := removeTree(filepath.Join(b.tmp, e.Name())); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return removed, fmt.Errorf("deps: collect: %w", err)
	}
	return removed, nil
}

// moveOut renames a sealed layer; a mover that is not root must make it
// writable first.
func moveOut(src, dst string) error {
	if os.Geteuid() != 0 {
		if err := os.Chmod(src, 0o755); err != nil {
			return err
		}
	}
	return os.Rename(src, dst)
}

// removeTree removes a layer or a build's directory, read-only
// directories included.
func removeTree(p string) error {
	if os.Geteuid() != 0 {
		filepath.WalkDir(p, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				os.Chmod(p, 0o700)
			}
			return nil
		})
	}
	return os.RemoveAll(p)
}

// isKey reports whether name is a layer key: 64 lower-case hex digits.
func isKey(name string) bool {
	if len(name) != 64 {
		return false
	}
	for _, c := range name {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
