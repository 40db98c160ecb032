package build

import (
	"bytes"
	"compress/gzip"
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// readCpio parses a newc archive into names and, for regular files, data.
func readCpio(t *testing.T, b []byte) (names []string, files map[string][]byte) {
	t.Helper()
	files = map[string][]byte{}
	field := func(h []byte, i int) int {
		n, err := strconv.ParseUint(string(h[6+8*i:14+8*i]), 16, 32)
		if err != nil {
			t.Fatal(err)
		}
		return int(n)
	}
	align := func(n int) int { return (n + 3) &^ 3 }
	for off := 0; ; {
		h := b[off : off+110]
		if string(h[:6]) != "070701" {
			t.Fatalf("bad magic at %d: %q", off, h[:6])
		}
		mode, size, nameLen := field(h, 1), field(h, 6), field(h, 11)
		name := string(b[off+110 : off+110+nameLen-1])
		off = align(off + 110 + nameLen)
		data := b[off : off+size]
		off = align(off + size)
		if name == "TRAILER!!!" {
			if off != len(b) {
				t.Errorf("%d bytes after the trailer", len(b)-off)
			}
			return names, files
		}
		names = append(names, name)
		if mode&0o170000 == modeReg {
			files[name] = data
		}
	}
}

func TestWriteCpio(t *testing.T) {
	var buf bytes.Buffer
	err := writeCpio(&buf, []cpioEntry{
		{name: "nimbus/agent.py", mode: modeReg | 0o644, data: []byte("print(1)\n")},
		{name: "init", mode: modeReg | 0o755, data: []byte("#!/bin/sh\n")},
		{name: "dev/console", mode: modeChar | 0o600, major: 5, minor: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	names, files := readCpio(t, buf.Bytes())
	if got := strings.Join(names, " "); got != "dev dev/console init nimbus nimbus/agent.py" {
		t.Errorf("members %q: parents must come first", got)
	}
	if string(files["nimbus/agent.py"]) != "print(1)\n" || string(files["init"]) != "#!/bin/sh\n" {
		t.Errorf("contents %q", files)
	}
}

func TestLoadOrder(t *testing.T) {
	order, err := loadOrder(map[string][]string{
		"virtio_mmio":    {"virtio", "virtio_ring"},
		"virtio":         {"virtio_ring"},
		"virtio_ring":    nil,
		"squashfs":       nil,
		"virtio_console": {"virtio", "virtio_ring"},
	})
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, m := range order {
		pos[m] = i
	}
	if len(order) != 5 || pos["virtio_ring"] > pos["virtio"] || pos["virtio"] > pos["virtio_mmio"] || pos["virtio"] > pos["virtio_console"] {
		t.Errorf("order %v", order)
	}
	if _, err := loadOrder(map[string][]string{"a": {"b"}, "b": {"a"}}); err == nil {
		t.Error("a cycle was accepted")
	}
	if _, err := loadOrder(map[string][]string{"a": {"missing"}}); err == nil {
		t.Error("a missing dependency was accepted")
	}
}

// fakeELF is enough of an ELF file for extractVmlinux to accept.
var fakeELF = append([]byte("\x7fELF\x02\x01\x01"), bytes.Repeat([]byte("kernel"), 1000)...)

func TestExtractVmlinux(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(fakeELF)
	zw.Close()
	setup := bytes.Repeat([]byte{0x1f, 0x8b, 0x00, 0x11}, 100) // near-misses of gzip's magic
	cases := map[string][]byte{"gzip": gz.Bytes()}
	if _, err := exec.LookPath("xz"); err == nil {
		cmd := exec.Command("xz", "-c", "--check=crc32")
		cmd.Stdin = bytes.NewReader(fakeELF)
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		cases["xz"] = out
	}
	for name, payload := range cases {
		t.Run(name, func(t *testing.T) {
			bz := append(append(append([]byte{}, setup...), payload...), bytes.Repeat([]byte{0xff}, 512)...)
			got, err := extractVmlinux(context.Background(), bz)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, fakeELF) {
				t.Errorf("extracted %d bytes, want the %d of the kernel", len(got), len(fakeELF))
			}
		})
	}
	if _, err := extractVmlinux(context.Background(), setup); err == nil {
		t.Error("an image without a kernel was accepted")
	}
}
