package build_test

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/build"
	"github.com/nimbusfaas/nimbus/internal/testenv"
)

// The child of TestUnpackMemory unpacks the archive these name.
const (
	memArchiveEnv = "NIMBUS_BUILD_MEMTEST_ARCHIVE"
	memDstEnv     = "NIMBUS_BUILD_MEMTEST_DST"
)

// maxGrowth is what unpacking may add to the peak RSS: generous, as the
// streams need well under 1 MiB, so that the test cannot flake, and far
// below what reading an archive or an entry whole would cost.
const maxGrowth = 64 << 20

// TestUnpackMemory unpacks archives of the largest size the default limits
// allow in a child process (this test binary again) and reads how much its
// peak RSS (VmHWM) grew: it must stay under 64 MiB. The zip of a million
// central-directory records is the archive archive/zip alone would need
// some 200 MiB to read the directory of.
func TestUnpackMemory(t *testing.T) {
	if archive := os.Getenv(memArchiveEnv); archive != "" {
		unpackAndReport(t, archive, os.Getenv(memDstEnv))
		return
	}
	if _, err := vmHWM(); err != nil {
		testenv.Require(t, "/proc/self/status", err)
	}
	size := build.DefaultLimits.ArchiveBytes - 1<<20
	for _, tc := range []struct {
		name   string
		write  func(t *testing.T, path string)
		refuse string // "" if it must unpack
	}{
		{"zip of 50 MiB", func(t *testing.T, path string) { writeBigZip(t, path, size) }, ""},
		{"tar.gz of 50 MiB", func(t *testing.T, path string) { writeBigTgz(t, path, size) }, ""},
		{"zip of a million records", func(t *testing.T, path string) { writeRecordsZip(t, path, 1_000_000) }, "more than 40000 entries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			archive, dst := filepath.Join(dir, "archive"), filepath.Join(dir, "dst")
			tc.write(t, archive)
			if err := os.Mkdir(dst, 0o755); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestUnpackMemory$", "-test.count=1")
			cmd.Env = append(os.Environ(), memArchiveEnv+"="+archive, memDstEnv+"="+dst)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			_, report, ok := strings.Cut(string(out), "memtest ")
			report, _, _ = strings.Cut(report, "\n")
			growth, result, _ := strings.Cut(report, " ")
			n, perr := strconv.ParseInt(growth, 10, 64)
			if !ok || perr != nil {
				t.Fatalf("child said:\n%s", out)
			}
			t.Logf("peak RSS grew %.1f MiB; %s", float64(n)/(1<<20), result)
			if n > maxGrowth {
				t.Errorf("peak RSS grew %d bytes, more than %d", n, maxGrowth)
			}
			if tc.refuse == "" && !strings.HasPrefix(result, "ok") || tc.refuse != "" && !strings.Contains(result, tc.refuse) {
				t.Errorf("unpack: %s", result)
			}
		})
	}
}

// unpackAndReport is the child: it unpacks archive into dst and prints how
// much the peak RSS grew, and the outcome.
func unpackAndReport(t *testing.T, archive, dst string) {
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	runtime.GC()
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // the peak starts again from here, where the kernel lets us
	before, err := vmHWM()
	if err != nil {
		t.Fatal(err)
	}
	m, err := build.Unpack(f, dst, build.DefaultLimits)
	after, _ := vmHWM()
	result := fmt.Sprintf("error: %v", err)
	if err == nil {
		result = fmt.Sprintf("ok: %d files, %d bytes", len(m.Files), m.UnpackedSize)
	}
	fmt.Printf("memtest %d %s\n", after-before, result)
}

// vmHWM is this process's peak RSS, in bytes.
func vmHWM() (int64, error) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/self/status")
}

// writeBigZip writes a zip of size bytes or a little less: one stored file
// of random bytes, so that reading it whole would show.
func writeBigZip(t *testing.T, path string, size int64) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "lib/big.bin", Method: zip.Store})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(randomBytes(int(size-4<<10), 1))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
}

// writeBigTgz writes a tar.gz of about size bytes: one file of random
// bytes, in stored deflate blocks, which Unpack inflates like any others.
func writeBigTgz(t *testing.T, path string, size int64) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, _ := gzip.NewWriterLevel(f, gzip.NoCompression) // random bytes would not shrink anyway
	tw := tar.NewWriter(gz)
	data := randomBytes(int(size-64<<10), 1)
	tw.WriteHeader(&tar.Header{Name: "lib/big.bin", Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
	tw.Write(data)
	tw.Close()
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
}

// writeRecordsZip writes a zip of one empty file "a" and n central-directory
// records of it, 47 bytes each, under 50 MiB for a million.
func writeRecordsZip(t *testing.T, path string, n int) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	le := func(v ...any) {
		for _, x := range v {
			binary.Write(w, binary.LittleEndian, x)
		}
	}
	le(uint32(0x04034b50), uint16(20), uint16(0), uint16(0), uint16(0), uint16(0x21), uint32(0), uint32(0), uint32(0), uint16(1), uint16(0))
	w.WriteString("a")
	var record bytes.Buffer
	for _, x := range []any{uint32(0x02014b50), uint16(20), uint16(20), uint16(0), uint16(0), uint16(0), uint16(0x21), uint32(0), uint32(0), uint32(0), uint16(1), uint16(0), uint16(0), uint16(0), uint16(0), uint32(0), uint32(0)} {
		binary.Write(&record, binary.LittleEndian, x)
	}
	record.WriteString("a")
	for range n {
		w.Write(record.Bytes())
	}
	le(uint32(0x06054b50), uint16(0), uint16(0), uint16(n), uint16(n), uint32(n*record.Len()), uint32(31), uint16(0))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}
