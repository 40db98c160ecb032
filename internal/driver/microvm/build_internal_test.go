package microvm

import (
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"os/exec"
	"path/filepath"
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

func TestDetectAccel(t *testing.T) {
	dir := t.TempDir()
	sys := filepath.Join(dir, "module")
	os.MkdirAll(sys, 0o755)
	kvm := filepath.Join(dir, "kvm")

	if a := detectAccel("auto", sys, kvm); a.name != "tcg" || !strings.Contains(a.reason, "no "+kvm) {
		t.Errorf("no /dev/kvm: %+v", a)
	}
	os.WriteFile(kvm, nil, 0o600)
	os.MkdirAll(filepath.Join(sys, "kvm_pvm"), 0o755)
	if a := detectAccel("auto", sys, kvm); a.name != "tcg" || !strings.Contains(a.reason, "neither kvm_intel nor kvm_amd") {
		t.Errorf("/dev/kvm of a software hypervisor: %+v", a)
	}
	os.MkdirAll(filepath.Join(sys, "kvm_amd"), 0o755)
	if a := detectAccel("auto", sys, kvm); a.name != "kvm" || !strings.Contains(a.reason, "kvm_amd") {
		t.Errorf("hardware KVM: %+v", a)
	}
	if a := detectAccel("tcg", sys, kvm); a.name != "tcg" {
		t.Errorf("forced tcg: %+v", a)
	}
	if a := detectAccel("kvm", filepath.Join(dir, "none"), kvm); a.name != "kvm" {
		t.Errorf("forced kvm: %+v", a)
	}
}

func TestKernelCmdline(t *testing.T) {
	tcg := kernelCmdline(accel{name: "tcg"}, "python", 128)
	for _, want := range []string{"console=ttyS0", "tsc=reliable", "nimbus_runtime=python", "nimbus_memory=128"} {
		if !strings.Contains(tcg, want) {
			t.Errorf("tcg command line %q lacks %q", tcg, want)
		}
	}
	if hostTSCkHz() > 0 && !strings.Contains(tcg, "tsc_early_khz=") {
		t.Errorf("tcg command line %q lacks tsc_early_khz", tcg)
	}
	if kvm := kernelCmdline(accel{name: "kvm"}, "nodejs", 256); strings.Contains(kvm, "tsc_early_khz") || !strings.Contains(kvm, "nimbus_runtime=nodejs") {
		t.Errorf("kvm command line %q", kvm)
	}
}

func TestOptions(t *testing.T) {
	env := func(kv ...string) func(string) (string, bool) {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	o, err := readOptions(env("HOME", "/home/ada"), "/data")
	if err != nil {
		t.Fatal(err)
	}
	if o.dir != "/home/ada/.cache/nimbus/microvm" || o.accel != "auto" || !o.snapshots || o.overheadMB != 160 {
		t.Errorf("defaults %+v", o)
	}
	for _, c := range []struct {
		env  func(string) (string, bool)
		want string
	}{
		{env(EnvDir, "/x", "XDG_CACHE_HOME", "/c", "HOME", "/h"), "/x"},
		{env("XDG_CACHE_HOME", "/c", "HOME", "/h"), "/c/nimbus/microvm"},
		{env(), "/data/microvm"},
	} {
		if got := DefaultDir(c.env, "/data"); got != c.want {
			t.Errorf("DefaultDir %q, want %q", got, c.want)
		}
	}
	for _, bad := range [][]string{{EnvAccel, "hvf"}, {EnvOverheadMB, "8"}, {EnvBootTimeout, "soon"}, {EnvSnapshots, "maybe"}} {
		if _, err := readOptions(env(bad...), "/data"); err == nil {
			t.Errorf("%s=%s accepted", bad[0], bad[1])
		}
	}
}

// TestGuestFiles checks the guest's scripts parse, with the host's shell
// and interpreters (the guest runs busybox's ash and the same
// interpreters).
func TestGuestFiles(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		data []byte
		cmd  []string
	}{
		{"init.sh", guestInit, []string{"sh", "-n"}},
		{"agent.py", guestAgentPython, []string{"python3", "-m", "py_compile"}},
		{"agent.js", guestAgentNode, []string{"node", "--check"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := exec.LookPath(c.cmd[0]); err != nil {
				t.Skipf("%s is not installed", c.cmd[0])
			}
			p := filepath.Join(dir, c.name)
			if err := os.WriteFile(p, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(c.cmd[0], append(c.cmd[1:], p)...).CombinedOutput(); err != nil {
				t.Errorf("%s: %v\n%s", c.name, err, out)
			}
		})
	}
}
