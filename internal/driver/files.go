package driver

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

// WriteFiles writes a function's files below dir, creating dir and the
// directories the paths name. Every write goes through an os.Root opened
// on dir, so no name (.., an absolute path, a symlink already there) can
// reach outside it, even one that validation let through: the files may
// come from a store that another writer shares.
func WriteFiles(dir string, files map[string]string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	for p, content := range files {
		if d := path.Dir(p); d != "." {
			if err := root.MkdirAll(d, 0o755); err != nil {
				return fmt.Errorf("write function file %q: %w", p, err)
			}
		}
		if err := root.WriteFile(p, []byte(content), 0o644); err != nil {
			return fmt.Errorf("write function file %q: %w", p, err)
		}
	}
	return nil
}

// LinkTree makes the directory dst, which may exist but must not hold
// what src holds, a copy of the tree src: its directories (0755), its
// regular files with their permission bits (the executable bit above all)
// and its symbolic links as links. A file is a hard link to src's where
// the file system allows, so no data is copied: src must never change, as
// a code or layer directory does not. Elsewhere it is a copy, byte for
// byte. Anything else (a device, a FIFO) is an error. It is for drivers
// that can only show an instance a directory they own (a pooled
// container's), not src itself.
func LinkTree(src, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	return filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		to := filepath.Join(dst, rel)
		switch t := e.Type(); {
		case t.IsDir():
			return os.Mkdir(to, 0o755)
		case t&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, to)
		case t.IsRegular():
			if os.Link(p, to) == nil {
				return nil
			}
			return copyFile(p, to)
		default:
			return fmt.Errorf("%s: a %v is neither a file, a directory nor a symbolic link", p, t)
		}
	})
}

// copyFile copies the regular file src to the new file dst, with src's
// permission bits.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	perm := fi.Mode().Perm()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Chmod(perm) // whatever the umask took away
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
