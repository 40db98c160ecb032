package build_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/build"
	"github.com/nimbusfaas/nimbus/internal/fn"
)

// FuzzUnpack unpacks any bytes: never a panic, never a write outside dst
// (unpackInto checks the directories above it hold only dst), an error is
// the archive's fault (400 or 413) and leaves dst empty, and what is
// accepted is what the manifest lists, no symlink of it leads out, and it
// packs back to the same manifest.
func FuzzUnpack(f *testing.F) {
	f.Add(zipOf(f, sampleTree()...))
	f.Add(tgzOf(f, sampleTree()...))
	f.Add(tarOf(f, sampleTree()...))
	f.Add(zipOf(f, file("ok", "x", 0o644), file("../evil", "x", 0o644)))
	f.Add(tarOf(f, dir("d/"), symlink("l", "d"), file("l/x", "x", 0o644)))
	f.Add(tgzOf(f, symlink("a/b/s", "../../x"), symlink("l", "a/b/s/../../..")))
	lim := build.Limits{ArchiveBytes: 1 << 20, UnpackedBytes: 4 << 20, Files: 64}
	f.Fuzz(func(t *testing.T, archive []byte) {
		dst, m, err := unpackInto(t, archive, lim)
		if err != nil {
			if !errors.Is(err, fn.ErrInvalid) && !errors.Is(err, fn.ErrTooLarge) {
				t.Fatalf("an error that is not the archive's fault: %v", err)
			}
			return
		}
		checkTree(t, dst, m)
		root, err := os.OpenRoot(dst)
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		for _, fi := range m.Files {
			if fi.Link == "" {
				continue
			}
			// Dangling links and loops are the archive's business; a link
			// out of dst is ours.
			if _, err := root.Stat(fi.Path); err != nil && strings.Contains(err.Error(), "escapes") {
				t.Fatalf("%s -> %s leads out of dst: %v", fi.Path, fi.Link, err)
			}
			if to := filepath.Join(dst, filepath.Dir(fi.Path), fi.Link); !strings.HasPrefix(to+"/", dst+"/") {
				t.Fatalf("%s -> %s leads out of dst", fi.Path, fi.Link)
			}
		}
		var b bytes.Buffer
		mp, err := build.Pack(dst, &b)
		if err != nil {
			t.Fatalf("Pack refuses what Unpack wrote: %v", err)
		}
		if !slices.Equal(mp.Files, m.Files) || mp.UnpackedSize != m.UnpackedSize {
			t.Fatalf("Pack lists %+v, Unpack %+v", mp.Files, m.Files)
		}
	})
}
