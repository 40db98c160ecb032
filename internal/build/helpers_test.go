package build_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/build"
	"github.com/nimbusfaas/nimbus/internal/fn"
)

// entry is one entry of an archive a test builds.
type entry struct {
	name string
	body []byte
	mode fs.FileMode // permission bits, and the type for a zip
	typ  byte        // tar type; 0 is a file (or, in a zip, the type in mode)
	link string      // a symlink's or hard link's target
}

func file(name, body string, perm fs.FileMode) entry {
	return entry{name: name, body: []byte(body), mode: perm, typ: tar.TypeReg}
}
func dir(name string) entry { return entry{name: name, mode: fs.ModeDir | 0o755, typ: tar.TypeDir} }
func symlink(name, target string) entry {
	return entry{name: name, mode: fs.ModeSymlink | 0o777, typ: tar.TypeSymlink, link: target}
}

// formats are the ways a test can pack entries.
var formats = []struct {
	name string
	pack func(testing.TB, ...entry) []byte
}{
	{"zip", zipOf},
	{"tar.gz", tgzOf},
	{"tar", tarOf},
}

var mtime = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// zipOf writes entries with archive/zip as most tools would.
func zipOf(tb testing.TB, entries ...entry) []byte {
	tb.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate, Modified: mtime}
		mode := e.mode
		switch e.typ {
		case tar.TypeDir:
			mode |= fs.ModeDir
			h.Method = zip.Store
		case tar.TypeSymlink:
			mode |= fs.ModeSymlink
			e.body = []byte(e.link)
		case tar.TypeFifo:
			mode |= fs.ModeNamedPipe
		}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := w.Write(e.body); err != nil {
			tb.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// tarOf writes entries with archive/tar.
func tarOf(tb testing.TB, entries ...entry) []byte {
	tb.Helper()
	var b bytes.Buffer
	writeTar(tb, &b, entries)
	return b.Bytes()
}

// tgzOf writes entries as a gzip of a tar.
func tgzOf(tb testing.TB, entries ...entry) []byte {
	tb.Helper()
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	writeTar(tb, gz, entries)
	if err := gz.Close(); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

func writeTar(tb testing.TB, w interface{ Write([]byte) (int, error) }, entries []entry) {
	tb.Helper()
	tw := tar.NewWriter(w)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		h := &tar.Header{Name: e.name, Typeflag: typ, Mode: int64(e.mode.Perm()), ModTime: mtime, Linkname: e.link, Format: tar.FormatPAX}
		if e.mode&fs.ModeSetuid != 0 {
			h.Mode |= 0o4000
		}
		if typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			tb.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
}

// unpackInto unpacks archive into a fresh dst two levels below a temporary
// directory and returns dst. It checks what must hold however Unpack
// ends: nothing was written beside dst, and on an error dst is empty.
func unpackInto(tb testing.TB, archive []byte, lim build.Limits) (string, *build.Manifest, error) {
	tb.Helper()
	top := tb.TempDir()
	dst := filepath.Join(top, "a", "dst")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		tb.Fatal(err)
	}
	m, err := build.Unpack(bytes.NewReader(archive), dst, lim)
	for _, p := range treeOf(tb, top) {
		if p != "a" && p != "a/dst" && !strings.HasPrefix(p, "a/dst/") {
			tb.Fatalf("Unpack wrote %s, outside dst", p)
		}
	}
	if err != nil {
		if left := treeOf(tb, dst); len(left) > 0 {
			tb.Fatalf("Unpack failed (%v) but left %q in dst", err, left)
		}
	}
	return dst, m, err
}

// treeOf lists every path below dir, sorted, slash-separated.
func treeOf(tb testing.TB, dir string) []string {
	tb.Helper()
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			paths = append(paths, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return paths
}

// refused checks that err is an *ArchiveError naming entry, whose reason
// holds want, and that wraps fn.ErrInvalid.
func refused(tb testing.TB, err error, entry, want string) {
	tb.Helper()
	var ae *build.ArchiveError
	if !errors.As(err, &ae) {
		tb.Fatalf("err = %v (%T), want an *ArchiveError", err, err)
	}
	if ae.Entry != entry || !strings.Contains(ae.Reason, want) {
		tb.Fatalf("err = %v, want entry %q and a reason with %q", err, entry, want)
	}
	if !errors.Is(err, fn.ErrInvalid) {
		tb.Fatalf("err = %v does not wrap fn.ErrInvalid", err)
	}
}
