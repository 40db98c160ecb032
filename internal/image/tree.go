package image

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Tree is the file system of an image, by absolute path. Files are the
// host's, at the paths they have on the host, so that an interpreter finds
// its libraries and standard library where it expects them; the symlinks
// on the way to them are kept as symlinks.
type Tree struct {
	entries map[string]*Entry
}

// Entry is one file, directory or symlink of a Tree.
type Entry struct {
	Type    byte // tar.TypeDir, tar.TypeReg or tar.TypeSymlink
	Mode    int64
	Size    int64
	ModTime time.Time
	Link    string // a symlink's target
	Src     string // a regular file's content: this host file,
	Data    []byte // or this
}

// NewTree returns an empty tree.
func NewTree() *Tree { return &Tree{entries: map[string]*Entry{}} }

// epoch is the time of generated files and of directories, whose times
// change with what else the host keeps in them.
var epoch = time.Unix(0, 0)

// Entry returns the entry at p, or nil.
func (t *Tree) Entry(p string) *Entry { return t.entries[p] }

// Paths returns every path in the tree, sorted: a directory comes before
// what is in it.
func (t *Tree) Paths() []string {
	ps := make([]string, 0, len(t.entries))
	for p := range t.entries {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

// Len is the number of entries.
func (t *Tree) Len() int { return len(t.entries) }

// Bytes is the size of the regular files' content.
func (t *Tree) Bytes() int64 {
	var n int64
	for _, e := range t.entries {
		n += e.Size
	}
	return n
}

// Hash is a hex SHA-256 of what the tree holds (paths, types, modes,
// sizes, times, link targets, generated content) after salt: it changes
// when a host file the tree takes changes, without reading the files.
func (t *Tree) Hash(salt string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", salt)
	for _, p := range t.Paths() {
		e := t.entries[p]
		fmt.Fprintf(h, "%s %c %o %d %d %s\n", p, e.Type, e.Mode, e.Size, e.ModTime.UnixNano(), e.Link)
		if e.Data != nil {
			h.Write(e.Data)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Add adds the host's path as it is: every directory and symlink on the
// way, and whatever the symlinks point to. path is a regular file or a
// directory (only the directory itself is added).
func (t *Tree) Add(path string) error { return t.add(path, 0) }

func (t *Tree) add(path string, depth int) error {
	if depth > 40 {
		return fmt.Errorf("%s: too many levels of symbolic links", path)
	}
	path = filepath.Clean(path)
	if !filepath.IsAbs(path) {
		return fmt.Errorf("%s: not an absolute path", path)
	}
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	cur := "/"
	for i, part := range parts {
		next := filepath.Join(cur, part)
		fi, err := os.Lstat(next)
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(next)
			if err != nil {
				return err
			}
			t.entries[next] = &Entry{Type: tar.TypeSymlink, Mode: 0o777, Link: target, ModTime: fi.ModTime()}
			if !filepath.IsAbs(target) {
				target = filepath.Join(cur, target)
			}
			return t.add(filepath.Join(append([]string{target}, parts[i+1:]...)...), depth+1)
		case fi.IsDir():
			if _, ok := t.entries[next]; !ok {
				t.entries[next] = &Entry{Type: tar.TypeDir, Mode: 0o755, ModTime: epoch}
			}
			cur = next
		case i == len(parts)-1 && fi.Mode().IsRegular():
			t.file(next, fi)
		default:
			return fmt.Errorf("%s: not a directory or regular file", next)
		}
	}
	return nil
}

// AddBinary adds an executable and the shared libraries it loads.
func (t *Tree) AddBinary(ctx context.Context, path string) error {
	if err := t.Add(path); err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	return t.AddLibs(ctx, real)
}

// AddLibs adds the shared libraries the given ELF files load (SharedLibs).
func (t *Tree) AddLibs(ctx context.Context, elfs ...string) error {
	if len(elfs) == 0 {
		return nil
	}
	libs, err := SharedLibs(ctx, elfs)
	if err != nil {
		return err
	}
	for _, l := range libs {
		if err := t.Add(l); err != nil {
			return err
		}
	}
	return nil
}

// AddDir adds dir (resolving symlinks on the way to it) and what is below
// it, less what skip rejects (rel is slash-separated, relative to dir;
// nil keeps everything). Symlinks below dir are kept as symlinks. It
// returns the shared objects it added.
func (t *Tree) AddDir(dir string, skip func(rel string, isDir bool) bool) ([]string, error) {
	if err := t.Add(dir); err != nil {
		return nil, err
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, err
	}
	var sos []string
	err = filepath.WalkDir(real, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == real {
			return nil
		}
		rel, _ := filepath.Rel(real, p)
		if skip != nil && skip(filepath.ToSlash(rel), d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			t.entries[p] = &Entry{Type: tar.TypeDir, Mode: 0o755, ModTime: epoch}
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			t.entries[p] = &Entry{Type: tar.TypeSymlink, Mode: 0o777, Link: target, ModTime: fi.ModTime()}
		case fi.Mode().IsRegular():
			t.file(p, fi)
			if isSharedObject(filepath.Base(p)) {
				sos = append(sos, p)
			}
		}
		return nil
	})
	return sos, err
}

func (t *Tree) file(p string, fi fs.FileInfo) {
	// Readable by an unprivileged user; no set-id bits.
	mode := int64(fi.Mode().Perm()|0o444) &^ 0o022
	t.entries[p] = &Entry{Type: tar.TypeReg, Mode: mode, Size: fi.Size(), ModTime: fi.ModTime(), Src: p}
}

// Gen adds a generated file, and the directories it is in.
func (t *Tree) Gen(p, content string) {
	t.Mkdir(filepath.Dir(p))
	t.entries[p] = &Entry{Type: tar.TypeReg, Mode: 0o644, Size: int64(len(content)), ModTime: epoch, Data: []byte(content)}
}

// Link adds a symlink at p to target unless p is target or something
// other than a symlink is at p already (the interpreter itself, say).
func (t *Tree) Link(p, target string) {
	if p == target {
		return
	}
	if e, ok := t.entries[p]; ok && e.Type != tar.TypeSymlink {
		return
	}
	t.Mkdir(filepath.Dir(p))
	t.entries[p] = &Entry{Type: tar.TypeSymlink, Mode: 0o777, Link: target, ModTime: epoch}
}

// Mkdir adds directory p (mode 0755) and its parents, where absent.
func (t *Tree) Mkdir(p string) {
	for ; p != "/" && p != "."; p = filepath.Dir(p) {
		if _, ok := t.entries[p]; !ok {
			t.entries[p] = &Entry{Type: tar.TypeDir, Mode: 0o755, ModTime: epoch}
		}
	}
}

// Chmod sets the mode of the entry at p, which must exist.
func (t *Tree) Chmod(p string, mode int64) {
	t.entries[p].Mode = mode
}

// WriteTar writes the tree as a tar archive, paths relative to its root.
func (t *Tree) WriteTar(w io.Writer) error {
	tw := tar.NewWriter(w)
	for _, p := range t.Paths() {
		e := t.entries[p]
		hdr := &tar.Header{
			Typeflag: e.Type,
			Name:     strings.TrimPrefix(p, "/"),
			Mode:     e.Mode,
			ModTime:  e.ModTime,
			Linkname: e.Link,
			Format:   tar.FormatPAX,
		}
		if e.Type == tar.TypeDir {
			hdr.Name += "/"
		}
		if e.Type == tar.TypeReg {
			hdr.Size = e.Size
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if e.Type != tar.TypeReg {
			continue
		}
		if e.Data != nil {
			if _, err := tw.Write(e.Data); err != nil {
				return err
			}
			continue
		}
		f, err := os.Open(e.Src)
		if err != nil {
			return err
		}
		n, err := io.Copy(tw, io.LimitReader(f, e.Size))
		f.Close()
		if err == nil && n != e.Size {
			err = fmt.Errorf("%s changed while being read", e.Src)
		}
		if err != nil {
			return err
		}
	}
	return tw.Close()
}

// Stage lays the tree out under dir, which must exist: directories,
// symlinks, generated files, and host files as hard links where dir is on
// the same file system, copies otherwise.
func (t *Tree) Stage(dir string) error {
	for _, p := range t.Paths() {
		e := t.entries[p]
		dst := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		var err error
		switch {
		case e.Type == tar.TypeDir:
			if err = os.Mkdir(dst, 0o755); errors.Is(err, fs.ErrExist) {
				err = nil
			}
			if err == nil {
				err = os.Chmod(dst, fs.FileMode(e.Mode)&fs.ModePerm|modeBits(e.Mode))
			}
		case e.Type == tar.TypeSymlink:
			err = os.Symlink(e.Link, dst)
		case e.Data != nil:
			err = os.WriteFile(dst, e.Data, fs.FileMode(e.Mode)&fs.ModePerm)
		default:
			err = stageFile(e.Src, dst, fs.FileMode(e.Mode)&fs.ModePerm)
		}
		if err != nil {
			return fmt.Errorf("stage %s: %w", p, err)
		}
	}
	return nil
}

// modeBits turns the sticky bit of a tar mode into Go's.
func modeBits(mode int64) fs.FileMode {
	if mode&0o1000 != 0 {
		return fs.ModeSticky
	}
	return 0
}

// stageFile puts the content of src at dst: a hard link where it can, a
// copy with mode perm otherwise.
func stageFile(src, dst string, perm fs.FileMode) error {
	if os.Link(src, dst) == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	o, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = io.Copy(o, in)
	if cerr := o.Close(); err == nil {
		err = cerr
	}
	return err
}
