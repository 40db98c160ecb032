package build_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/build"
)

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// sampleTree is a small tree with every kind of entry Unpack accepts.
func sampleTree() []entry {
	return []entry{
		file("main.py", "def handler(e, c):\n    return 1\n", 0o644),
		dir("bin/"),
		file("bin/run", "#!/bin/sh\necho hi\n", 0o755),
		file("lib/bytes.bin", string(allBytes()), 0o600),
		symlink("lib/current", "bytes.bin"),
		symlink("up", "lib"),
		file("empty", "", 0o644),
		dir("assets/"),
	}
}

func TestUnpackFormatsGiveOneManifest(t *testing.T) {
	want := []build.FileInfo{
		{Path: "bin/run", Size: 18, SHA256: sha([]byte("#!/bin/sh\necho hi\n")), Mode: 0o755},
		{Path: "empty", Size: 0, SHA256: sha(nil), Mode: 0o644},
		{Path: "lib/bytes.bin", Size: 256, SHA256: sha(allBytes()), Mode: 0o644},
		{Path: "lib/current", Mode: 0o777, Link: "bytes.bin"},
		{Path: "main.py", Size: 32, SHA256: sha([]byte("def handler(e, c):\n    return 1\n")), Mode: 0o644},
		{Path: "up", Mode: 0o777, Link: "lib"},
	}
	var first *build.Manifest
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			archive := f.pack(t, sampleTree()...)
			dst, m, err := unpackInto(t, archive, build.DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(m.Files, want) || m.UnpackedSize != 18+256+32 {
				t.Fatalf("manifest files = %+v, unpacked %d\nwant %+v", m.Files, m.UnpackedSize, want)
			}
			if m.Size != int64(len(archive)) || m.SHA256 != sha(archive) {
				t.Errorf("manifest says %d bytes, %s; the archive is %d bytes, %s", m.Size, m.SHA256, len(archive), sha(archive))
			}
			if first != nil && (!slices.Equal(first.Files, m.Files) || first.UnpackedSize != m.UnpackedSize) {
				t.Errorf("%s manifest differs from the zip's", f.name)
			}
			first = m
			checkTree(t, dst, m)
			if fi, err := os.Stat(filepath.Join(dst, "assets")); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 {
				t.Errorf("empty directory assets: %v, %v", fi, err)
			}
		})
	}
}

// checkTree checks that dir holds exactly what m lists (besides
// directories), with its contents, modes and link targets.
func checkTree(t *testing.T, dir string, m *build.Manifest) {
	t.Helper()
	var onDisk []string
	for _, p := range treeOf(t, dir) {
		fi, err := os.Lstat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if !fi.IsDir() {
			onDisk = append(onDisk, p)
		}
	}
	var listed []string
	for _, f := range m.Files {
		listed = append(listed, f.Path)
		full := filepath.Join(dir, filepath.FromSlash(f.Path))
		fi, err := os.Lstat(full)
		if err != nil {
			t.Fatal(err)
		}
		if f.Link != "" {
			target, err := os.Readlink(full)
			if err != nil || target != f.Link || f.Size != 0 || f.SHA256 != "" || f.Mode != 0o777 {
				t.Errorf("%s: link to %q (%v), manifest %+v", f.Path, target, err, f)
			}
			continue
		}
		data, err := os.ReadFile(full)
		if err != nil {
			t.Fatal(err)
		}
		if sha(data) != f.SHA256 || int64(len(data)) != f.Size || uint32(fi.Mode()) != f.Mode {
			t.Errorf("%s: %d bytes %s mode %v on disk, manifest %+v", f.Path, len(data), sha(data), fi.Mode(), f)
		}
	}
	if !slices.Equal(onDisk, listed) || !slices.IsSorted(listed) {
		t.Errorf("on disk %q, manifest lists %q", onDisk, listed)
	}
}

func TestUnpackTakesDotSlashNames(t *testing.T) {
	// As `tar -C dir -czf code.tgz .` writes them.
	archive := tgzOf(t, dir("./"), file("./main.py", "x", 0o644), dir("./lib/"), file("./lib/a.py", "y", 0o644))
	_, m, err := unpackInto(t, archive, build.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files) != 2 || m.Files[0].Path != "lib/a.py" || m.Files[1].Path != "main.py" {
		t.Fatalf("files = %+v", m.Files)
	}
}

func TestUnpackEmptyArchives(t *testing.T) {
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			_, m, err := unpackInto(t, f.pack(t), build.DefaultLimits)
			if err != nil || len(m.Files) != 0 || m.Files == nil || m.UnpackedSize != 0 {
				t.Fatalf("Unpack = %+v, %v", m, err)
			}
		})
	}
}

func TestUnpackRefusesWhatIsNotAnArchive(t *testing.T) {
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}
	for _, tc := range []struct {
		name, data, says string
	}{
		{"empty", "", "is empty"},
		{"text", "def handler(event, context):\n    return 1\n", "not an archive"},
		{"gzip of text", string(gz([]byte(strings.Repeat("hello\n", 200)))), "gzip that does not hold a tar"},
		{"gzip of nothing", string(gz(nil)), "gzip that does not hold a tar"},
		{"bzip2", "BZh91AY&SY\x00\x00\x00\x00", "bzip2"},
		{"xz", "\xfd7zXZ\x00\x00\x04", "xz"},
		{"self-extracting zip", "PK\x07\x08" + strings.Repeat("x", 600), "zip that does not start"},
		{"512 bytes of text", strings.Repeat("a", 512), "not an archive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := unpackInto(t, []byte(tc.data), build.DefaultLimits)
			refused(t, err, "", tc.says)
			refused(t, err, "", "accepted are zip, tar.gz and tar archives")
		})
	}
}

func TestUnpackRefusesCorruptArchives(t *testing.T) {
	z := zipOf(t, file("a.txt", strings.Repeat("hello ", 1000), 0o644))
	tgz := tgzOf(t, file("a.txt", strings.Repeat("hello ", 1000), 0o644))
	flipped := slices.Clone(tgz)
	flipped[len(flipped)-6] ^= 0xff // the gzip's CRC-32
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"zip without its end", z[:len(z)-22]},
		{"zip cut in its data", append(slices.Clone(z[:60]), z[len(z)-100:]...)},
		{"tar.gz cut short", tgz[:len(tgz)/2]},
		{"tar.gz with a wrong checksum", flipped},
		{"tar.gz with garbage after it", append(slices.Clone(tgz), "garbage"...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := unpackInto(t, tc.data, build.DefaultLimits)
			var ae *build.ArchiveError
			if !errors.As(err, &ae) || !strings.Contains(ae.Reason, "corrupt") {
				t.Fatalf("err = %v, want an *ArchiveError saying corrupt", err)
			}
		})
	}
}

func TestUnpackWantsAnEmptyDirectory(t *testing.T) {
	dst := t.TempDir()
	keep := filepath.Join(dst, "keep")
	if err := os.WriteFile(keep, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := build.Unpack(bytes.NewReader(zipOf(t, file("a", "b", 0o644))), dst, build.DefaultLimits); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("Unpack into a full directory: %v", err)
	}
	if b, err := os.ReadFile(keep); err != nil || string(b) != "mine" {
		t.Fatalf("Unpack touched what was there: %q, %v", b, err)
	}
	if _, err := build.Unpack(bytes.NewReader(zipOf(t, file("a", "b", 0o644))), filepath.Join(dst, "missing"), build.DefaultLimits); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Unpack into a missing directory: %v", err)
	}
}

func TestUnpackModes(t *testing.T) {
	old := syscall.Umask(0o077) // modes must not depend on the umask
	t.Cleanup(func() { syscall.Umask(old) })
	entries := []entry{
		dir("private/"),
		file("private/p600", "x", 0o600),
		file("p666", "x", 0o666),
		file("p700", "x", 0o700),
		file("p777", "x", 0o777),
		file("p001", "x", 0o001),
		file("p010", "x", 0o010),
		{name: "setuid", body: []byte("x"), mode: fs.ModeSetuid | 0o755},
	}
	entries[1].mode, entries[0].mode = 0o600, fs.ModeDir|0o700
	want := map[string]fs.FileMode{"private": fs.ModeDir | 0o755, "private/p600": 0o644, "p666": 0o644, "p700": 0o755, "p777": 0o755, "p001": 0o755, "p010": 0o755, "setuid": 0o755}
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			dst, m, err := unpackInto(t, f.pack(t, entries...), build.DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			for p, mode := range want {
				fi, err := os.Lstat(filepath.Join(dst, p))
				if err != nil || fi.Mode() != mode {
					t.Errorf("%s: mode %v (%v), want %v", p, fi.Mode(), err, mode)
				}
			}
			for _, fi := range m.Files {
				if fs.FileMode(fi.Mode) != want[fi.Path] {
					t.Errorf("manifest: %s mode %o, want %o", fi.Path, fi.Mode, want[fi.Path])
				}
			}
		})
	}
}
