package build_test

import (
	"archive/zip"
	"bytes"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/build"
)

// codeFiles is the tree the round-trip tests carry.
func codeFiles() map[string]build.File {
	return map[string]build.File{
		"bytes.bin":          {Data: allBytes(), Mode: 0o644},
		"random.bin":         {Data: randomBytes(1<<20, 7), Mode: 0o644},
		"bin/run.sh":         {Data: []byte("#!/bin/sh\necho hi\n"), Mode: 0o755},
		"lib/x/y.py":         {Data: []byte("Y = 1\n"), Mode: 0o644},
		"lib/link":           {Data: []byte("x/y.py"), Mode: fs.ModeSymlink | 0o777},
		"lib-a":              {Data: []byte("sorts before lib/ by bytes, after it by directory walk"), Mode: 0o644},
		"empty":              {Mode: 0o644},
		"Zeta/\u00e9t\u00e9": {Data: []byte("non-ASCII name"), Mode: 0o644},
	}
}

// writeTree writes files below dir in the order given, each with its own
// modification time and with modes that only the execute bits matter in.
func writeTree(t *testing.T, dir string, files map[string]build.File, order []string) {
	t.Helper()
	for i, p := range order {
		f := files[p]
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o700); err != nil {
			t.Fatal(err)
		}
		if f.Mode&fs.ModeSymlink != 0 {
			if err := os.Symlink(string(f.Data), full); err != nil {
				t.Fatal(err)
			}
			continue
		}
		perm := fs.FileMode(0o600)
		if f.Mode&0o111 != 0 {
			perm = 0o710
		}
		if err := os.WriteFile(full, f.Data, perm); err != nil {
			t.Fatal(err)
		}
		when := time.Date(2001+i, 2, 3, 4, 5, 6, 0, time.Local)
		if err := os.Chtimes(full, when, when); err != nil {
			t.Fatal(err)
		}
	}
}

func pack(t *testing.T, dir string) ([]byte, *build.Manifest) {
	t.Helper()
	var b bytes.Buffer
	m, err := build.Pack(dir, &b)
	if err != nil {
		t.Fatal(err)
	}
	if m.Size != int64(b.Len()) || m.SHA256 != sha(b.Bytes()) {
		t.Fatalf("manifest says %d bytes %s, wrote %d bytes %s", m.Size, m.SHA256, b.Len(), sha(b.Bytes()))
	}
	return b.Bytes(), m
}

func TestRoundTrip(t *testing.T) {
	files := codeFiles()
	// An archive as a user's tool writes it: its own order, directory
	// entries, its own times and permissions.
	var entries []entry
	for _, p := range slices.Backward(slices.Sorted(maps.Keys(files))) {
		f := files[p]
		if f.Mode&fs.ModeSymlink != 0 {
			entries = append(entries, symlink(p, string(f.Data)))
			continue
		}
		perm := fs.FileMode(0o664)
		if f.Mode&0o111 != 0 {
			perm = 0o775
		}
		entries = append(entries, file(p, string(f.Data), perm))
	}
	entries = append(entries, dir("lib/"), dir("lib/x/"))

	dst1, m1, err := unpackInto(t, zipOf(t, entries...), build.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	canonical, mp := pack(t, dst1)
	dst2, m2, err := unpackInto(t, canonical, build.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m1.Files, mp.Files) || !slices.Equal(m1.Files, m2.Files) || m1.UnpackedSize != mp.UnpackedSize || m2.UnpackedSize != mp.UnpackedSize {
		t.Fatalf("manifests differ:\nunpack %+v\npack   %+v\nagain  %+v", m1.Files, mp.Files, m2.Files)
	}
	if m2.SHA256 != mp.SHA256 || m2.Size != mp.Size {
		t.Errorf("Unpack of the canonical zip says %s (%d), Pack said %s (%d)", m2.SHA256, m2.Size, mp.SHA256, mp.Size)
	}
	sameTree(t, dst1, dst2)
	for p, f := range files {
		full := filepath.Join(dst2, filepath.FromSlash(p))
		if f.Mode&fs.ModeSymlink != 0 {
			if target, err := os.Readlink(full); err != nil || target != string(f.Data) {
				t.Errorf("%s: link to %q, %v", p, target, err)
			}
			continue
		}
		data, err := os.ReadFile(full)
		if err != nil || !bytes.Equal(data, f.Data) {
			t.Errorf("%s: %d bytes back, %v; want %d", p, len(data), err, len(f.Data))
		}
		fi, _ := os.Stat(full)
		if want := map[bool]fs.FileMode{true: 0o755, false: 0o644}[f.Mode&0o111 != 0]; fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
	}

	t.Run("PackFiles gives the same bytes", func(t *testing.T) {
		var b bytes.Buffer
		m, err := build.PackFiles(files, &b)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b.Bytes(), canonical) || m.SHA256 != mp.SHA256 || !slices.Equal(m.Files, mp.Files) {
			t.Fatalf("PackFiles gave %d bytes %s, Pack %d bytes %s", b.Len(), m.SHA256, len(canonical), mp.SHA256)
		}
	})
	t.Run("another directory of the same files gives the same bytes", func(t *testing.T) {
		old := syscall.Umask(0o077)
		t.Cleanup(func() { syscall.Umask(old) })
		other := t.TempDir()
		order := slices.Collect(maps.Keys(files))
		writeTree(t, other, files, order)
		if err := os.MkdirAll(filepath.Join(other, "empty-dir", "deeper"), 0o700); err != nil {
			t.Fatal(err)
		}
		again, m := pack(t, other)
		if !bytes.Equal(again, canonical) || m.SHA256 != mp.SHA256 {
			t.Fatalf("Pack of the same files elsewhere gave %s, first %s", m.SHA256, mp.SHA256)
		}
	})
	t.Run("the zip is canonical", func(t *testing.T) {
		zr, err := zip.NewReader(bytes.NewReader(canonical), int64(len(canonical)))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range zr.File {
			names = append(names, f.Name)
			want := map[bool]fs.FileMode{true: 0o755, false: 0o644}[files[f.Name].Mode&0o111 != 0]
			method := zip.Deflate
			if files[f.Name].Mode&fs.ModeSymlink != 0 {
				want, method = fs.ModeSymlink|0o777, zip.Store
			}
			if f.Mode() != want || f.Method != method || !f.Modified.Equal(time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)) {
				t.Errorf("%s: mode %v method %d modified %v", f.Name, f.Mode(), f.Method, f.Modified)
			}
			rc, _ := f.Open()
			data, err := io.ReadAll(rc)
			if err != nil || !bytes.Equal(data, files[f.Name].Data) {
				t.Errorf("%s: %v", f.Name, err)
			}
		}
		if want := slices.Sorted(maps.Keys(files)); !slices.Equal(names, want) {
			t.Errorf("entries %q, want %q (sorted, no directories)", names, want)
		}
	})
}

// sameTree checks that a and b hold the same paths with the same modes,
// contents and link targets.
func sameTree(t *testing.T, a, b string) {
	t.Helper()
	pa, pb := treeOf(t, a), treeOf(t, b)
	if !slices.Equal(pa, pb) {
		t.Fatalf("trees differ: %q and %q", pa, pb)
	}
	for _, p := range pa {
		fa, _ := os.Lstat(filepath.Join(a, p))
		fb, _ := os.Lstat(filepath.Join(b, p))
		if fa.Mode() != fb.Mode() {
			t.Errorf("%s: mode %v and %v", p, fa.Mode(), fb.Mode())
		}
		if fa.Mode().IsRegular() {
			da, _ := os.ReadFile(filepath.Join(a, p))
			db, _ := os.ReadFile(filepath.Join(b, p))
			if !bytes.Equal(da, db) {
				t.Errorf("%s: contents differ", p)
			}
		}
		if fa.Mode()&fs.ModeSymlink != 0 {
			la, _ := os.Readlink(filepath.Join(a, p))
			lb, _ := os.Readlink(filepath.Join(b, p))
			if la != lb {
				t.Errorf("%s: links to %q and %q", p, la, lb)
			}
		}
	}
}

func TestPackRefuses(t *testing.T) {
	inDir := func(make func(dir string) error) func(w io.Writer) error {
		return func(w io.Writer) error {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "ok"), []byte("ok"), 0o644)
			if err := make(dir); err != nil {
				t.Fatal(err)
			}
			_, err := build.Pack(dir, w)
			return err
		}
	}
	files := func(files map[string]build.File) func(w io.Writer) error {
		return func(w io.Writer) error {
			files["ok"] = build.File{Data: []byte("ok")}
			_, err := build.PackFiles(files, w)
			return err
		}
	}
	for _, tc := range []struct {
		name      string
		pack      func(w io.Writer) error
		bad, says string
	}{
		{"fifo", inDir(func(d string) error { return syscall.Mkfifo(filepath.Join(d, "pipe"), 0o644) }), "pipe", "fifo"},
		{"absolute symlink", inDir(func(d string) error { return os.Symlink("/etc/passwd", filepath.Join(d, "l")) }), "l", "absolute"},
		{"symlink out", inDir(func(d string) error { return os.Symlink("../x", filepath.Join(d, "l")) }), "l", "outside"},
		{"backslash", inDir(func(d string) error { return os.WriteFile(filepath.Join(d, `a\b`), nil, 0o644) }), `a\b`, "backslash"},
		{"not UTF-8", inDir(func(d string) error { return os.WriteFile(filepath.Join(d, "caf\xe9"), nil, 0o644) }), "caf\xe9", "UTF-8"},
		{"below a file", files(map[string]build.File{"a": {}, "a/b": {}}), "a/b", "below"},
		{"below a symlink", files(map[string]build.File{"a": {Data: []byte("."), Mode: fs.ModeSymlink}, "a/b": {}}), "a/b", "below"},
		{"parent", files(map[string]build.File{"../x": {}}), "../x", "clean relative path"},
		{"directory", files(map[string]build.File{"d": {Mode: fs.ModeDir | 0o755}}), "d", "only files and symlinks"},
		{"symlink out in a map", files(map[string]build.File{"l": {Data: []byte("/x"), Mode: fs.ModeSymlink}}), "l", "absolute"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			err := tc.pack(&b)
			refused(t, err, tc.bad, tc.says)
			if b.Len() > 0 {
				t.Errorf("wrote %d bytes before refusing", b.Len())
			}
		})
	}
}
