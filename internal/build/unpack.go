package build

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// accepted ends the reason an archive of the wrong kind is refused with.
const accepted = "accepted are zip, tar.gz and tar archives"

// Unpack extracts a zip, a tar.gz or a plain tar (told apart by their first
// bytes, not by a name) from r into dst, which must exist and be empty,
// within lim, and returns the manifest of what it wrote.
//
// An entry that is unsafe or breaks a limit ends the extraction with an
// *ArchiveError naming it as soon as that is known, before any byte past
// a limit and before any later entry is written; an archive larger than
// lim.ArchiveBytes ends it with an error wrapping fn.ErrTooLarge, read no
// further; an error reading r is returned wrapped. On any error dst is
// left empty.
//
// What is refused: names that are not clean relative paths (see
// checkName), duplicate names (a file and a directory of one name
// included), entries below a symlink, symlinks that are absolute or lead
// outside dst, hard links, devices and fifos, encrypted zip entries and
// compression other than stored and deflate.
//
// How bombs are stopped: the bytes written are counted as they are written,
// and the total may not pass lim.UnpackedBytes; lim.Files bounds the files
// and symlinks, and the directories. A zip entry may not inflate to more
// than its header declares, nor, once past 1 MiB, to more than 1000 times
// the compressed bytes read for it so far (deflate cannot do better than
// 1032:1, so only runs of one repeated byte come near it). A tar stream,
// decompressed, may hold at most UnpackedBytes plus 8 KiB per file and
// directory allowed plus 1 MiB: room for headers, long names and padding,
// and a bound on how long a gzip of nothing but headers can keep us busy.
//
// Memory stays bounded whatever the archive holds: a tar or tar.gz is read
// as a stream; a zip, which must be read from its end, is first copied to
// an unlinked temporary file, and its entries are counted on the way so
// that archive/zip is never handed more than 2·lim.Files of them to hold.
// No entry is ever read whole into memory.
//
// Directories are created 0755, files 0644 or 0755 (any execute bit), and
// every write goes through an os.Root on dst, so nothing can leave dst even
// if a check above were missed. A leading "./" on names, as `tar -C dir .`
// writes them, is dropped, and the entry "./" itself is dst.
func Unpack(r io.Reader, dst string, lim Limits) (m *Manifest, err error) {
	lim = lim.orDefault()
	root, err := os.OpenRoot(dst)
	if err != nil {
		return nil, fmt.Errorf("build: unpack: %w", err)
	}
	defer root.Close()
	if err := mustBeEmpty(root); err != nil {
		return nil, fmt.Errorf("build: unpack into %s: %w", dst, err)
	}
	x := &extractor{
		root:  root,
		lim:   lim,
		nodes: make(map[string]node),
		src:   &archiveReader{r: r, limit: lim.ArchiveBytes, sum: sha256.New()},
		buf:   make([]byte, 32<<10),
	}
	defer func() {
		if err != nil {
			if cerr := removeAll(root); cerr != nil {
				err = errors.Join(err, fmt.Errorf("build: clean %s: %w", dst, cerr))
			}
		}
	}()
	br := bufio.NewReaderSize(x.src, 64<<10)
	head, err := br.Peek(512)
	if err != nil && err != io.EOF {
		if e := x.src.failure(); e != nil {
			return nil, e
		}
	}
	switch {
	case len(head) == 0:
		err = &ArchiveError{Reason: "is empty; " + accepted}
	case hasPrefix(head, "PK\x03\x04"), hasPrefix(head, "PK\x05\x06"):
		err = x.unzip(br)
	case hasPrefix(head, "\x1f\x8b"):
		err = x.untarGzip(br)
	case isTar(head):
		err = x.untar(br)
	default:
		err = &ArchiveError{Reason: "is " + kindOf(head) + "; " + accepted}
	}
	if err != nil {
		return nil, err
	}
	// Read r to its end, so that Size and SHA256 are the archive's.
	if _, err := io.CopyBuffer(io.Discard, onlyReader{br}, x.buf); err != nil {
		return nil, x.readFailure("", err)
	}
	return x.manifest(x.src.n, x.src.sum), nil
}

// kindOf names what a file that is not an archive we take seems to be.
func kindOf(head []byte) string {
	for _, k := range []struct{ magic, name string }{
		{"BZh", "a bzip2 file"},
		{"\xfd7zXZ\x00", "an xz file"},
		{"\x28\xb5\x2f\xfd", "a zstd file"},
		{"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"},
		{"Rar!\x1a\x07", "a RAR archive"},
		{"PK", "a zip that does not start with a local file header (split, spanned or self-extracting)"},
	} {
		if hasPrefix(head, k.magic) {
			return k.name
		}
	}
	return "not an archive"
}

func hasPrefix(b []byte, s string) bool { return bytes.HasPrefix(b, []byte(s)) }

// mustBeEmpty returns an error unless root's directory is empty.
func mustBeEmpty(root *os.Root) error {
	d, err := root.Open(".")
	if err != nil {
		return err
	}
	defer d.Close()
	if names, err := d.Readdirnames(1); len(names) > 0 {
		return errors.New("not empty")
	} else if err != nil && err != io.EOF {
		return err
	}
	return nil
}

// removeAll removes everything in root's directory.
func removeAll(root *os.Root) error {
	d, err := root.Open(".")
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		errs = append(errs, root.RemoveAll(n))
	}
	return errors.Join(errs...)
}

// archiveReader reads the archive from the caller's reader: it counts and
// hashes what it reads, stops once more than limit bytes came, and keeps
// the first error so that a failure of r, or the limit, is told apart from
// a corrupt archive however the decoders above it report it.
type archiveReader struct {
	r     io.Reader
	limit int64
	n     int64
	sum   hash.Hash
	err   error // sticky: the limit, or r's error (io.EOF included)
}

func (a *archiveReader) Read(p []byte) (int, error) {
	if a.err != nil {
		return 0, a.err
	}
	if rest := a.limit + 1 - a.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := a.r.Read(p)
	a.n += int64(n)
	if a.n > a.limit {
		a.err = fmt.Errorf("archive: %w: more than the limit of %d bytes", fn.ErrTooLarge, a.limit)
		return 0, a.err
	}
	a.sum.Write(p[:n])
	a.err = err
	return n, err
}

// failure is the error to return instead of what a decoder made of it: the
// limit, or r's own error; nil if r is fine (or at its end).
func (a *archiveReader) failure() error {
	switch {
	case a.err == nil || a.err == io.EOF:
		return nil
	case errors.Is(a.err, fn.ErrTooLarge):
		return a.err
	}
	return fmt.Errorf("build: read archive: %w", a.err)
}

// onlyReader hides a reader's WriterTo, so that io.CopyBuffer uses the
// buffer it is given.
type onlyReader struct{ io.Reader }

// kind is what an entry makes.
type kind uint8

const (
	kindDir kind = iota
	kindFile
	kindLink
)

// node is a path written: what it is, and whether an entry named it (a
// directory may have been made only as the parent of one).
type node struct {
	kind     kind
	explicit bool
}

// extractor writes the entries of one archive below root.
type extractor struct {
	root     *os.Root
	lim      Limits
	nodes    map[string]node
	files    int   // files and symlinks written
	dirs     int   // directories made
	written  int64 // bytes of files written
	out      []FileInfo
	src      *archiveReader
	tarCap   *capReader // the decompressed tar stream, for a tar
	zipFile  *fileReaderAt
	zipBuf   *bufio.Reader // reused for every deflated entry
	inflater io.ReadCloser // reused for every deflated entry
	buf      []byte
}

// readFailure classes an error met reading an entry (or the archive when
// entry is ""): the caller's reader failing or the archive limit come
// first, then our own refusals, and anything else is corrupt data.
func (x *extractor) readFailure(entry string, err error) error {
	if e := x.src.failure(); e != nil {
		return e
	}
	if x.zipFile != nil && x.zipFile.err != nil {
		return fmt.Errorf("build: read spooled zip: %w", x.zipFile.err)
	}
	if x.tarCap != nil && x.tarCap.over {
		return &ArchiveError{Entry: entry, Reason: fmt.Sprintf("the tar stream holds more than %d bytes: too much besides the files' contents", x.tarCap.limit)}
	}
	var ae *ArchiveError
	if errors.As(err, &ae) {
		return err
	}
	return &ArchiveError{Entry: entry, Reason: "is corrupt: " + err.Error()}
}

// entryPath turns an entry's name into the path it is written at, or
// returns why it cannot be one; "" (and no reason) is the root itself.
func entryPath(name string, k kind) (string, string) {
	p := name
	if k == kindDir {
		p = strings.TrimSuffix(p, "/")
	}
	if p == "." && k == kindDir {
		return "", ""
	}
	p = strings.TrimPrefix(p, "./")
	return p, checkName(p)
}

// place claims p (named name in the archive) for an entry of kind k: it
// refuses duplicates and anything below a file or a symlink, and counts
// against the limits, making missing parent directories on the way, and
// the directory itself for a directory entry.
func (x *extractor) place(name, p string, k kind) error {
	for i := range len(p) {
		if p[i] != '/' {
			continue
		}
		dir := p[:i]
		switch n, ok := x.nodes[dir]; {
		case !ok:
			if err := x.mkdir(name, dir, false); err != nil {
				return err
			}
		case n.kind == kindFile:
			return &ArchiveError{Entry: name, Reason: fmt.Sprintf("is below %s, which is a file", quote(dir))}
		case n.kind == kindLink:
			return &ArchiveError{Entry: name, Reason: fmt.Sprintf("is below %s, which is a symlink: nothing is written through a symlink", quote(dir))}
		}
	}
	if n, ok := x.nodes[p]; ok {
		switch {
		case n.kind == kindDir && k == kindDir && !n.explicit:
			x.nodes[p] = node{kind: kindDir, explicit: true}
			return nil
		case n.kind == k:
			return &ArchiveError{Entry: name, Reason: "appears twice in the archive"}
		}
		return &ArchiveError{Entry: name, Reason: "names both a directory and a file or symlink"}
	}
	if k == kindDir {
		return x.mkdir(name, p, true)
	}
	if x.files++; x.files > x.lim.Files {
		return &ArchiveError{Entry: name, Reason: fmt.Sprintf("is one file more than the limit of %d files", x.lim.Files)}
	}
	x.nodes[p] = node{kind: k, explicit: true}
	return nil
}

// mkdir makes the directory p, for the entry name, counting it.
func (x *extractor) mkdir(name, p string, explicit bool) error {
	if x.dirs++; x.dirs > x.lim.Files {
		return &ArchiveError{Entry: name, Reason: fmt.Sprintf("makes one directory more than the limit of %d directories", x.lim.Files)}
	}
	if err := x.root.Mkdir(p, modeDir); err != nil {
		return x.writeFailure(name, err)
	}
	if err := x.root.Chmod(p, modeDir); err != nil { // whatever the umask
		return x.writeFailure(name, err)
	}
	x.nodes[p] = node{kind: kindDir, explicit: explicit}
	return nil
}

// writeFailure classes an error making an entry: a name that exists
// already although the archive did not repeat it can only be two names the
// file system takes as one (case, Unicode normalization), which is the
// archive's fault; anything else is ours.
func (x *extractor) writeFailure(name string, err error) error {
	if errors.Is(err, fs.ErrExist) {
		return &ArchiveError{Entry: name, Reason: "collides with another entry on this file system"}
	}
	return fmt.Errorf("build: unpack %s: %w", quote(name), err)
}

// dir makes the directory entry name.
func (x *extractor) dir(name string) error {
	p, reason := entryPath(name, kindDir)
	if reason != "" {
		return &ArchiveError{Entry: name, Reason: reason}
	}
	if p == "" {
		return nil
	}
	return x.place(name, p, kindDir)
}

// symlink makes the symlink entry name pointing at target.
func (x *extractor) symlink(name, target string) error {
	p, reason := entryPath(name, kindLink)
	if reason == "" {
		reason = checkLink(p, target)
	}
	if reason != "" {
		return &ArchiveError{Entry: name, Reason: reason}
	}
	if err := x.place(name, p, kindLink); err != nil {
		return err
	}
	if err := x.root.Symlink(target, p); err != nil {
		return x.writeFailure(name, err)
	}
	x.out = append(x.out, FileInfo{Path: p, Mode: modeLink, Link: target})
	return nil
}

// file writes the file entry name, of mode mode, from src.
func (x *extractor) file(name string, mode fs.FileMode, src io.Reader) error {
	p, reason := entryPath(name, kindFile)
	if reason != "" {
		return &ArchiveError{Entry: name, Reason: reason}
	}
	if err := x.place(name, p, kindFile); err != nil {
		return err
	}
	f, err := x.root.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return x.writeFailure(name, err)
	}
	defer f.Close()
	w := &countingWriter{x: x, name: name, f: f, sum: sha256.New()}
	if _, err := io.CopyBuffer(w, onlyReader{src}, x.buf); err != nil {
		if w.err != nil {
			return w.err
		}
		return x.readFailure(name, err)
	}
	perm := fileMode(mode)
	if err := f.Chmod(perm); err != nil {
		return x.writeFailure(name, err)
	}
	if err := f.Close(); err != nil {
		return x.writeFailure(name, err)
	}
	x.out = append(x.out, FileInfo{Path: p, Size: w.n, SHA256: hex.EncodeToString(w.sum.Sum(nil)), Mode: uint32(perm)})
	return nil
}

// countingWriter writes one file, counting every byte against the
// archive's limit before it is written.
type countingWriter struct {
	x    *extractor
	name string
	f    *os.File
	sum  hash.Hash
	n    int64
	err  error // a refusal or a write error: not the reader's fault
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if w.x.written+int64(len(p)) > w.x.lim.UnpackedBytes {
		w.err = &ArchiveError{Entry: w.name, Reason: fmt.Sprintf("takes the archive past the limit of %d bytes unpacked", w.x.lim.UnpackedBytes)}
		return 0, w.err
	}
	n, err := w.f.Write(p)
	w.x.written += int64(n)
	w.n += int64(n)
	w.sum.Write(p[:n])
	if err != nil {
		w.err = w.x.writeFailure(w.name, err)
	}
	return n, w.err
}

// manifest is what x wrote, for an archive of size bytes with hash sum.
func (x *extractor) manifest(size int64, sum hash.Hash) *Manifest {
	files := slices.Clone(x.out)
	if files == nil {
		files = []FileInfo{}
	}
	slices.SortFunc(files, func(a, b FileInfo) int { return strings.Compare(a.Path, b.Path) })
	return &Manifest{SHA256: hex.EncodeToString(sum.Sum(nil)), Size: size, UnpackedSize: x.written, Files: files}
}
