package build

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"
	"time"
)

// canonicalTime is the modification time of every entry of a canonical
// zip: the earliest a zip can hold.
var canonicalTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// Pack writes the canonical zip of the tree at dir to w and returns its
// manifest. Symlinks are packed as symlinks, never followed; a device,
// socket or fifo, a name or a symlink that Unpack would refuse, is refused
// with an *ArchiveError before anything is written.
//
// The canonical zip: one entry per file or symlink, sorted by path (byte
// order), each dated 1980-01-01 00:00 UTC, with the mode 0644 or 0755 (any
// execute bit) for a file, deflated (compress/flate, DefaultCompression),
// and 0777 for a symlink, stored, its target as contents. It holds no
// directory entries, empty directories are not kept: so the zip is a
// function of the manifest's files alone, and Pack of a directory gives the
// same bytes as PackFiles of the files in it. The same files give the same
// bytes, hence the same SHA256, for as long as compress/flate compresses
// the same way (a Go release may change that; nothing breaks but sharing).
func Pack(dir string, w io.Writer) (*Manifest, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("build: pack: %w", err)
	}
	defer root.Close()
	var entries []packEntry
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch t := d.Type(); {
		case t.IsDir():
		case t&fs.ModeSymlink != 0:
			target, err := root.Readlink(p)
			if err != nil {
				return err
			}
			entries = append(entries, packEntry{path: p, isLink: true, link: target})
		case t.IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			entries = append(entries, packEntry{path: p, mode: info.Mode(), open: func() (io.ReadCloser, error) { return root.Open(p) }})
		default:
			return &ArchiveError{Entry: p, Reason: "is a device, a socket or a fifo: only files, directories and symlinks are packed"}
		}
		return nil
	})
	if err != nil {
		if ae := (*ArchiveError)(nil); errors.As(err, &ae) {
			return nil, err
		}
		return nil, fmt.Errorf("build: pack %s: %w", dir, err)
	}
	return writeCanonical(entries, w)
}

// PackFiles writes the canonical zip of an in-memory tree (as the API's
// JSON "files" map gives it) to w and returns its manifest. Files of the
// same paths, contents and modes give the same bytes as Pack of a directory
// holding them. A File whose Mode has fs.ModeSymlink is a symlink to
// string(Data); any other type is refused, and so is a path that is below
// another file's path.
func PackFiles(files map[string]File, w io.Writer) (*Manifest, error) {
	entries := make([]packEntry, 0, len(files))
	for _, p := range slices.Sorted(maps.Keys(files)) {
		f := files[p]
		switch f.Mode.Type() {
		case 0:
			entries = append(entries, packEntry{path: p, mode: f.Mode, open: func() (io.ReadCloser, error) {
				return io.NopCloser(bytes.NewReader(f.Data)), nil
			}})
		case fs.ModeSymlink:
			entries = append(entries, packEntry{path: p, isLink: true, link: string(f.Data)})
		default:
			return nil, &ArchiveError{Entry: p, Reason: fmt.Sprintf("has the mode %v: only files and symlinks are packed", f.Mode)}
		}
	}
	return writeCanonical(entries, w)
}

// packEntry is one file or symlink to pack.
type packEntry struct {
	path   string
	mode   fs.FileMode // as found; packed as fileMode(mode)
	isLink bool
	link   string
	open   func() (io.ReadCloser, error)
}

// writeCanonical checks entries as Unpack would, then writes their
// canonical zip to w.
func writeCanonical(entries []packEntry, w io.Writer) (*Manifest, error) {
	slices.SortFunc(entries, func(a, b packEntry) int { return strings.Compare(a.path, b.path) })
	paths := make(map[string]bool, len(entries))
	for _, e := range entries {
		reason := checkName(e.path)
		if reason == "" && e.isLink {
			reason = checkLink(e.path, e.link)
		}
		if reason != "" {
			return nil, &ArchiveError{Entry: e.path, Reason: reason}
		}
		paths[e.path] = true
	}
	for _, e := range entries {
		for i := range len(e.path) {
			if e.path[i] == '/' && paths[e.path[:i]] {
				return nil, &ArchiveError{Entry: e.path, Reason: fmt.Sprintf("is below %s, which is a file or a symlink", quote(e.path[:i]))}
			}
		}
	}

	out := &hashingWriter{w: w, sum: sha256.New()}
	zw := zip.NewWriter(out)
	var deflater *flate.Writer // one for every entry, reset in turn
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
		if deflater == nil {
			var err error
			deflater, err = flate.NewWriter(w, flate.DefaultCompression)
			return deflater, err
		}
		deflater.Reset(w)
		return deflater, nil
	})
	m := &Manifest{Files: make([]FileInfo, 0, len(entries))}
	buf := make([]byte, 32<<10)
	for _, e := range entries {
		fi, err := packOne(zw, e, buf)
		if err != nil {
			return nil, err
		}
		m.Files = append(m.Files, fi)
		m.UnpackedSize += fi.Size
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("build: pack: %w", err)
	}
	m.SHA256, m.Size = hex.EncodeToString(out.sum.Sum(nil)), out.n
	return m, nil
}

// packOne writes one entry into zw.
func packOne(zw *zip.Writer, e packEntry, buf []byte) (FileInfo, error) {
	hdr := &zip.FileHeader{Name: e.path, Modified: canonicalTime}
	if e.isLink {
		hdr.Method = zip.Store
		hdr.SetMode(fs.ModeSymlink | modeLink)
		zf, err := zw.CreateHeader(hdr)
		if err == nil {
			_, err = io.WriteString(zf, e.link)
		}
		if err != nil {
			return FileInfo{}, fmt.Errorf("build: pack %s: %w", quote(e.path), err)
		}
		return FileInfo{Path: e.path, Mode: modeLink, Link: e.link}, nil
	}
	mode := fileMode(e.mode)
	hdr.Method = zip.Deflate
	hdr.SetMode(mode)
	zf, err := zw.CreateHeader(hdr)
	if err != nil {
		return FileInfo{}, fmt.Errorf("build: pack %s: %w", quote(e.path), err)
	}
	src, err := e.open()
	if err != nil {
		return FileInfo{}, fmt.Errorf("build: pack %s: %w", quote(e.path), err)
	}
	defer src.Close()
	sum := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(zf, sum), onlyReader{src}, buf)
	if err != nil {
		return FileInfo{}, fmt.Errorf("build: pack %s: %w", quote(e.path), err)
	}
	return FileInfo{Path: e.path, Size: n, SHA256: hex.EncodeToString(sum.Sum(nil)), Mode: uint32(mode)}, nil
}

// hashingWriter counts and hashes what it passes on to w.
type hashingWriter struct {
	w   io.Writer
	sum hash.Hash
	n   int64
}

func (h *hashingWriter) Write(p []byte) (int, error) {
	n, err := h.w.Write(p)
	h.sum.Write(p[:n])
	h.n += int64(n)
	return n, err
}
