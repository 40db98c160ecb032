package build_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/build"
	"github.com/nimbusfaas/nimbus/internal/fn"
)

// randomBytes returns n bytes that do not compress, the same for a seed.
func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	r.Read(b)
	return b
}

// countingReader counts what Unpack reads of an archive.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// rawZip writes one entry whose header says what h says, whatever data is.
func rawZip(tb testing.TB, h *zip.FileHeader, data []byte) []byte {
	tb.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, err := zw.CreateRaw(h)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// storedZip writes files without compressing them, which many files need
// not wait for.
func storedZip(tb testing.TB, files []entry) []byte {
	tb.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, e := range files {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: zip.Store})
		if err != nil {
			tb.Fatal(err)
		}
		w.Write(e.body)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// deflatedZeros returns a deflate stream of mib MiB of zeros: one flushed
// MiB repeated (its matches reach back only over zeros), then a final
// empty stored block, so that a 300 MiB bomb is made in a moment.
func deflatedZeros(tb testing.TB, mib int) []byte {
	tb.Helper()
	var one bytes.Buffer
	w, _ := flate.NewWriter(&one, flate.BestCompression)
	w.Write(make([]byte, 1<<20))
	w.Flush()
	out := append(bytes.Repeat(one.Bytes(), mib), 0x01, 0x00, 0x00, 0xff, 0xff)
	if mib <= 2 {
		n, err := io.Copy(io.Discard, flate.NewReader(bytes.NewReader(out)))
		if err != nil || n != int64(mib)<<20 {
			tb.Fatalf("deflatedZeros(%d) inflates to %d bytes, %v", mib, n, err)
		}
	}
	return out
}

func TestUnpackArchiveLimit(t *testing.T) {
	lim := build.Limits{ArchiveBytes: 32 << 10}
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			archive := f.pack(t, file("big", string(randomBytes(64<<10, 1)), 0o644))
			dst := t.TempDir()
			r := &countingReader{r: bytes.NewReader(archive)}
			_, err := build.Unpack(r, dst, lim)
			if !errors.Is(err, fn.ErrTooLarge) || !strings.Contains(err.Error(), "limit of 32768 bytes") {
				t.Fatalf("err = %v, want fn.ErrTooLarge naming the limit", err)
			}
			if errors.As(err, new(*build.ArchiveError)) {
				t.Errorf("err = %v is an *ArchiveError (400), want 413", err)
			}
			if r.n > lim.ArchiveBytes+1 {
				t.Errorf("read %d bytes of the archive, more than the limit and one", r.n)
			}
			if left := treeOf(t, dst); len(left) > 0 {
				t.Errorf("left %q", left)
			}
		})
	}
}

func TestUnpackUnpackedLimit(t *testing.T) {
	lim := build.Limits{UnpackedBytes: 1 << 20}
	third := func(n int, seed uint64) string { return string(randomBytes(n, seed)) }
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			_, m, err := unpackInto(t, f.pack(t, file("a", third(512<<10, 1), 0o644), file("b", third(512<<10, 2), 0o644)), lim)
			if err != nil || m.UnpackedSize != 1<<20 {
				t.Fatalf("exactly the limit: %v, %+v", err, m)
			}
			_, _, err = unpackInto(t, f.pack(t, file("a", third(400<<10, 1), 0o644), file("b", third(400<<10, 2), 0o644), file("c", third(400<<10, 3), 0o644)), lim)
			refused(t, err, "c", "past the limit of 1048576 bytes unpacked")
		})
	}
}

// TestUnpackUnpackedLimitStopsAtOnce proves the limit is checked as bytes
// are written, not after the entry or the archive: a tar is not read far
// past it, and a zip entry is refused for the limit before the end of its
// data, where its wrong CRC would have been found.
func TestUnpackUnpackedLimitStopsAtOnce(t *testing.T) {
	lim := build.Limits{UnpackedBytes: 1 << 20}
	t.Run("tar", func(t *testing.T) {
		archive := tarOf(t, file("big", string(randomBytes(4<<20, 1)), 0o644), file("after", "x", 0o644))
		r := &countingReader{r: bytes.NewReader(archive)}
		_, err := build.Unpack(r, t.TempDir(), lim)
		refused(t, err, "big", "past the limit")
		if r.n > lim.UnpackedBytes+128<<10 {
			t.Errorf("read %d bytes of a %d byte archive before stopping at a 1 MiB limit", r.n, len(archive))
		}
	})
	t.Run("zip", func(t *testing.T) {
		data := randomBytes(4<<20, 1)
		h := &zip.FileHeader{Name: "big", Method: zip.Store, CRC32: crc32.ChecksumIEEE(data) + 1, CompressedSize64: 4 << 20, UncompressedSize64: 4 << 20}
		_, _, err := unpackInto(t, rawZip(t, h, data), lim)
		refused(t, err, "big", "past the limit")
	})
}

func TestUnpackZipHeaderLies(t *testing.T) {
	ten := crc32.ChecksumIEEE(make([]byte, 10))
	for _, tc := range []struct {
		name string
		h    *zip.FileHeader
		data []byte
		says string
	}{
		// The classic bomb: a header that claims 10 bytes over 300 MiB of
		// zeros. Refused at the 11th byte, not at the unpacked limit.
		{"inflates past its declared size", &zip.FileHeader{Name: "bomb", Method: zip.Deflate, CRC32: ten, UncompressedSize64: 10}, deflatedZeros(t, 300), "more than the 10 bytes its header declares"},
		{"stored past its declared size", &zip.FileHeader{Name: "bomb", Method: zip.Store, CRC32: ten, UncompressedSize64: 10}, make([]byte, 100), "more than the 10 bytes"},
		{"shorter than declared", &zip.FileHeader{Name: "bomb", Method: zip.Deflate, CRC32: ten, UncompressedSize64: 2 << 20}, deflatedZeros(t, 1), "fewer than the 2097152"},
		{"wrong CRC", &zip.FileHeader{Name: "bomb", Method: zip.Store, CRC32: ten + 1, UncompressedSize64: 10}, make([]byte, 10), "CRC-32"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.h.CompressedSize64 = uint64(len(tc.data))
			_, _, err := unpackInto(t, rawZip(t, tc.h, tc.data), build.DefaultLimits)
			refused(t, err, "bomb", tc.says)
		})
	}
}

func TestUnpackCompressionRatio(t *testing.T) {
	// Honest headers, and deflate at its best (some 1020:1 on zeros).
	zeros := func(mib int) []byte {
		stream := deflatedZeros(t, mib)
		return rawZip(t, &zip.FileHeader{Name: "zeros", Method: zip.Deflate, CRC32: crc32.ChecksumIEEE(make([]byte, mib<<20)),
			CompressedSize64: uint64(len(stream)), UncompressedSize64: uint64(mib) << 20}, stream)
	}
	if _, _, err := unpackInto(t, zeros(1), build.DefaultLimits); err != nil {
		t.Fatalf("1 MiB of zeros, within the first MiB: %v", err)
	}
	if _, _, err := unpackInto(t, zipOf(t, file("random", string(randomBytes(2<<20, 1)), 0o644)), build.DefaultLimits); err != nil {
		t.Fatalf("2 MiB of random bytes: %v", err)
	}
	_, _, err := unpackInto(t, zeros(16), build.DefaultLimits)
	refused(t, err, "zeros", "more than 1000 times its compressed size")
}

func TestUnpackFileLimit(t *testing.T) {
	many := func(n int) []entry {
		e := make([]entry, n)
		for i := range e {
			e[i] = file(fmt.Sprintf("f/%05d", i), "x", 0o644)
		}
		return e
	}
	t.Run("5000 files", func(t *testing.T) {
		for _, archive := range [][]byte{storedZip(t, many(5000)), tgzOf(t, many(5000)...)} {
			_, m, err := unpackInto(t, archive, build.DefaultLimits)
			if err != nil || len(m.Files) != 5000 {
				t.Fatalf("%v, %d files", err, len(m.Files))
			}
		}
	})
	t.Run("20001 files", func(t *testing.T) {
		_, _, err := unpackInto(t, storedZip(t, many(20001)), build.DefaultLimits)
		refused(t, err, "f/20000", "limit of 20000 files")
	})
	t.Run("zip: refused before any entry is read", func(t *testing.T) {
		// The first entry is corrupt; the count is what is refused.
		bad := rawZip(t, &zip.FileHeader{Name: "bad", Method: zip.Store, CRC32: 1, CompressedSize64: 1, UncompressedSize64: 1}, []byte("x"))
		zr, _ := zip.NewReader(bytes.NewReader(bad), int64(len(bad)))
		var b bytes.Buffer
		zw := zip.NewWriter(&b)
		zw.Copy(zr.File[0])
		for _, e := range many(10) {
			w, _ := zw.Create(e.name)
			w.Write(e.body)
		}
		zw.Close()
		_, _, err := unpackInto(t, b.Bytes(), build.Limits{Files: 10})
		refused(t, err, "f/00009", "limit of 10 files")
	})
	t.Run("streamed", func(t *testing.T) {
		// The 11th file is refused before anything after it is read.
		archive := tarOf(t, append(many(11), file("after", string(randomBytes(1<<20, 1)), 0o644))...)
		r := &countingReader{r: bytes.NewReader(archive)}
		_, err := build.Unpack(r, t.TempDir(), build.Limits{Files: 10})
		refused(t, err, "f/00010", "limit of 10 files")
		if r.n > 256<<10 {
			t.Errorf("read %d bytes of %d", r.n, len(archive))
		}
	})
	for _, f := range formats {
		t.Run("symlinks count/"+f.name, func(t *testing.T) {
			_, _, err := unpackInto(t, f.pack(t, file("a", "x", 0o644), symlink("b", "a"), symlink("c", "a")), build.Limits{Files: 2})
			refused(t, err, "c", "limit of 2 files")
		})
		t.Run("directories count/"+f.name, func(t *testing.T) {
			_, _, err := unpackInto(t, f.pack(t, file("a/b/c/d/f", "x", 0o644)), build.Limits{Files: 3})
			refused(t, err, "a/b/c/d/f", "limit of 3 directories")
		})
	}
	t.Run("zip entries", func(t *testing.T) {
		// More records than the limits could ever allow are refused before
		// archive/zip reads them (see TestUnpackMemory for why).
		var dirs []entry
		for i := range 11 {
			dirs = append(dirs, dir(fmt.Sprintf("d%d/", i)))
		}
		_, _, err := unpackInto(t, zipOf(t, dirs...), build.Limits{Files: 5})
		refused(t, err, "", "more than 10 entries")
	})
}

func TestUnpackTarStreamCap(t *testing.T) {
	// Headers that carry nothing but bulk: each PAX header below is 900 KiB
	// of the decompressed stream for one byte of file.
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, name := range []string{"a", "b"} {
		tw.WriteHeader(&tar.Header{Name: name, Size: 1, Mode: 0o644, Typeflag: tar.TypeReg, PAXRecords: map[string]string{"NIMBUS.pad": strings.Repeat("x", 900<<10)}})
		tw.Write([]byte("x"))
	}
	tw.Close()
	_, _, err := unpackInto(t, b.Bytes(), build.Limits{Files: 1, UnpackedBytes: 1 << 10})
	refused(t, err, "", "the tar stream holds more than")
}

func TestUnpackCleansUp(t *testing.T) {
	// Files, directories and symlinks, then a refusal: dst is left empty
	// (unpackInto checks), and the error is the refusal.
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			entries := append(sampleTree(), file("deep/er/x", "x", 0o755), file("../escape", "x", 0o644))
			_, _, err := unpackInto(t, f.pack(t, entries...), build.DefaultLimits)
			refused(t, err, "../escape", "clean relative path")
		})
	}
}
