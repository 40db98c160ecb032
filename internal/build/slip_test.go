package build_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"io/fs"
	"strings"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/build"
)

func TestUnpackRefusesUnsafeEntries(t *testing.T) {
	ok := file("ok.txt", "fine", 0o644) // written first: Unpack must remove it
	long := strings.Repeat("d/", 512) + "f"
	for _, tc := range []struct {
		name    string
		entries []entry
		bad     string // the entry named
		says    string
		zipOnly bool // tar cannot carry such a name
		tarOnly bool // zip cannot carry such an entry
	}{
		{name: "parent", entries: []entry{file("../evil", "x", 0o644)}, bad: "../evil", says: "clean relative path"},
		{name: "parent inside", entries: []entry{file("a/../../evil", "x", 0o644)}, bad: "a/../../evil", says: "clean relative path"},
		{name: "parent directory", entries: []entry{dir("../")}, bad: "../", says: "clean relative path"},
		{name: "absolute", entries: []entry{file("/tmp/evil", "x", 0o644)}, bad: "/tmp/evil", says: "absolute"},
		{name: "absolute directory", entries: []entry{dir("/")}, bad: "/", says: "empty name"},
		{name: "backslash", entries: []entry{file(`..\evil`, "x", 0o644)}, bad: `..\evil`, says: "backslash"},
		{name: "dot element", entries: []entry{file("a/./b", "x", 0o644)}, bad: "a/./b", says: "clean relative path"},
		{name: "dot", entries: []entry{file(".", "x", 0o644)}, bad: ".", says: "clean relative path"},
		{name: "two leading dots", entries: []entry{file("././b", "x", 0o644)}, bad: "././b", says: "clean relative path"},
		{name: "empty element", entries: []entry{file("a//b", "x", 0o644)}, bad: "a//b", says: "clean relative path"},
		{name: "empty name", entries: []entry{file("", "x", 0o644)}, bad: "", says: "empty name", zipOnly: true},
		{name: "NUL", entries: []entry{file("a\x00b", "x", 0o644)}, bad: "a\x00b", says: "NUL", zipOnly: true},
		{name: "not UTF-8", entries: []entry{file("caf\xe9.py", "x", 0o644)}, bad: "caf\xe9.py", says: "UTF-8", zipOnly: true},
		{name: "long path", entries: []entry{file(long, "x", 0o644)}, bad: long, says: "1025 bytes, more than 1024"},
		{name: "long name", entries: []entry{file(strings.Repeat("x", 256), "x", 0o644)}, bad: strings.Repeat("x", 256), says: "256 bytes, more than 255"},
		{name: "duplicate file", entries: []entry{file("a", "1", 0o644), file("a", "2", 0o644)}, bad: "a", says: "twice"},
		{name: "duplicate directory", entries: []entry{dir("d/"), dir("d/")}, bad: "d/", says: "twice"},
		{name: "duplicate symlink", entries: []entry{symlink("l", "a"), symlink("l", "b")}, bad: "l", says: "twice"},
		{name: "file below a file", entries: []entry{file("a", "1", 0o644), file("a/b", "2", 0o644)}, bad: "a/b", says: `below "a", which is a file`},
		{name: "file where a directory is", entries: []entry{file("a/b", "1", 0o644), file("a", "2", 0o644)}, bad: "a", says: "both a directory"},
		{name: "directory where a file is", entries: []entry{file("a", "1", 0o644), dir("a/")}, bad: "a/", says: "both a directory"},
		{name: "symlink where a directory is", entries: []entry{dir("a/"), symlink("a", ".")}, bad: "a", says: "both a directory"},
		{name: "symlink to an absolute path", entries: []entry{symlink("passwd", "/etc/passwd")}, bad: "passwd", says: "absolute"},
		{name: "symlink to the parent", entries: []entry{symlink("up", "..")}, bad: "up", says: "outside"},
		{name: "symlink out of a directory", entries: []entry{symlink("a/b/up", "../../../x")}, bad: "a/b/up", says: "outside"},
		{name: "symlink with an unclean target", entries: []entry{symlink("l", "a/../b")}, bad: "l", says: "not a clean path"},
		{name: "symlink chain climbing out", entries: []entry{
			// a/b/s leads to x at the root; l reads lexically as ".", but the
			// kernel would follow s and then climb three levels from x.
			symlink("a/b/s", "../../x"), symlink("l", "a/b/s/../../.."),
		}, bad: "l", says: "not a clean path"},
		{name: "symlink with an empty target", entries: []entry{symlink("l", "")}, bad: "l", says: "empty target"},
		{name: "symlink with a backslash", entries: []entry{symlink("l", `..\..\x`)}, bad: "l", says: "backslash"},
		{name: "symlink with a NUL", entries: []entry{symlink("l", "a\x00b")}, bad: "l", says: "NUL", zipOnly: true},
		{name: "file through a symlink", entries: []entry{dir("d/"), symlink("l", "d"), file("l/x", "x", 0o644)}, bad: "l/x", says: `below "l", which is a symlink`},
		{name: "directory through a symlink", entries: []entry{symlink("l", "."), dir("l/d/")}, bad: "l/d/", says: "symlink"},
		{name: "symlink through a symlink", entries: []entry{symlink("l", "."), symlink("l/m", "x")}, bad: "l/m", says: "symlink"},
		{name: "hard link", entries: []entry{file("a", "x", 0o644), {name: "b", typ: tar.TypeLink, link: "a"}}, bad: "b", says: "hard link", tarOnly: true},
		{name: "hard link out", entries: []entry{{name: "b", typ: tar.TypeLink, link: "/etc/passwd"}}, bad: "b", says: "hard link", tarOnly: true},
		{name: "character device", entries: []entry{{name: "null", typ: tar.TypeChar}}, bad: "null", says: "device", tarOnly: true},
		{name: "block device", entries: []entry{{name: "sda", typ: tar.TypeBlock}}, bad: "sda", says: "device", tarOnly: true},
		{name: "fifo", entries: []entry{{name: "pipe", typ: tar.TypeFifo, mode: 0o644}}, bad: "pipe", says: "fifo"},
	} {
		for _, f := range formats {
			if tc.zipOnly && f.name != "zip" || tc.tarOnly && f.name == "zip" {
				continue
			}
			t.Run(tc.name+"/"+f.name, func(t *testing.T) {
				archive := f.pack(t, append([]entry{ok}, tc.entries...)...)
				_, _, err := unpackInto(t, archive, build.DefaultLimits)
				refused(t, err, tc.bad, tc.says)
			})
		}
	}
}

// TestUnpackRefusesZipEntryKinds covers what only a zip can say.
func TestUnpackRefusesZipEntryKinds(t *testing.T) {
	raw := func(h *zip.FileHeader, data []byte) []byte {
		var b bytes.Buffer
		zw := zip.NewWriter(&b)
		w, err := zw.CreateRaw(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		zw.Close()
		return b.Bytes()
	}
	for _, tc := range []struct {
		name string
		zip  []byte
		says string
	}{
		{"encrypted", raw(&zip.FileHeader{Name: "e", Method: zip.Store, Flags: 0x1, CompressedSize64: 4, UncompressedSize64: 4}, []byte("abcd")), "encrypted"},
		{"bzip2", raw(&zip.FileHeader{Name: "e", Method: 12, CompressedSize64: 4, UncompressedSize64: 4}, []byte("abcd")), "method 12"},
		{"socket", func() []byte {
			h := &zip.FileHeader{Name: "e", Method: zip.Store}
			h.SetMode(fs.ModeSocket | 0o644)
			return raw(h, nil)
		}(), "socket"},
		{"symlink target too long", func() []byte {
			h := &zip.FileHeader{Name: "e", Method: zip.Store, CompressedSize64: 1025, UncompressedSize64: 1025}
			h.SetMode(fs.ModeSymlink | 0o777)
			return raw(h, bytes.Repeat([]byte("a"), 1025))
		}(), "more than 1024"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := unpackInto(t, tc.zip, build.DefaultLimits)
			refused(t, err, "e", tc.says)
		})
	}
}
