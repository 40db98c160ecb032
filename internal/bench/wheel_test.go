package bench_test

import (
	"archive/zip"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/bench"
	"github.com/nimbusfaas/nimbus/internal/testenv"
)

var demo = bench.Wheel{Name: "nimbuswheeltest", Version: "1.2", Files: map[string]string{
	"nimbuswheeltest/__init__.py": "from .sub import answer\n",
	"nimbuswheeltest/sub.py":      "def answer():\n    return 42\n",
}}

// python3 is the interpreter functions run with, with pip.
func python3(t *testing.T) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err == nil {
		var out []byte
		if out, err = exec.Command(py, "-m", "pip", "--version").CombinedOutput(); err != nil {
			err = &exec.Error{Name: py + " -m pip (" + strings.TrimSpace(string(out)) + ")", Err: err}
		}
	}
	testenv.Require(t, "python3 with pip", err)
	return py
}

// TestWheelInstalls: pip installs the wheel offline, from a find-links
// directory, as a dependency build does, and the package imports.
func TestWheelInstalls(t *testing.T) {
	py := python3(t)
	dir, target := t.TempDir(), t.TempDir()
	p, err := demo.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(p) != "nimbuswheeltest-1.2-py3-none-any.whl" {
		t.Errorf("wheel written as %s", p)
	}
	cmd := exec.Command(py, "-I", "-m", "pip", "install", "--no-index", "--find-links", dir, "--only-binary=:all:",
		"--target", target, "--disable-pip-version-check", "--no-cache-dir", "nimbuswheeltest==1.2")
	cmd.Env = []string{"PATH=" + filepath.Dir(py) + ":/usr/bin:/bin", "HOME=" + t.TempDir(), "PIP_CONFIG_FILE=" + os.DevNull}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pip install: %v\n%s", err, out)
	}
	out, err := exec.Command(py, "-I", "-c", "import sys; sys.path.insert(0, sys.argv[1]); import nimbuswheeltest; print(nimbuswheeltest.answer())", target).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "42" {
		t.Fatalf("import the installed package: %v: %s", err, out)
	}
}

// TestWheelRecord: RECORD's hashes and sizes, as Python computes them,
// match every file of the wheel, and list them all.
func TestWheelRecord(t *testing.T) {
	py := python3(t)
	p, err := demo.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const check = `
import base64, hashlib, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
record = [n for n in z.namelist() if n.endswith(".dist-info/RECORD")]
assert len(record) == 1, record
listed = set()
for line in z.read(record[0]).decode().splitlines():
    path, digest, size = line.rsplit(",", 2)
    listed.add(path)
    if path == record[0]:
        assert digest == "" and size == "", line
        continue
    data = z.read(path)
    want = "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    assert digest == want, (path, digest, want)
    assert int(size) == len(data), (path, size, len(data))
assert listed == set(z.namelist()), (listed, z.namelist())
print("ok")
`
	if out, err := exec.Command(py, "-I", "-c", check, p).CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("RECORD does not match the wheel: %v\n%s", err, out)
	}
}

// TestWheelBytes: the same wheel is the same bytes (so that a layer key
// and a find-links directory stay the same from run to run), and paths
// that would leave the package are refused.
func TestWheelBytes(t *testing.T) {
	a, err := demo.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := demo.Bytes()
	if !bytes.Equal(a, b) {
		t.Error("two Bytes of one wheel differ")
	}
	zr, err := zip.NewReader(bytes.NewReader(a), int64(len(a)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	if last := names[len(names)-1]; last != "nimbuswheeltest-1.2.dist-info/RECORD" {
		t.Errorf("entries %q: RECORD is not last", names)
	}
	for _, tc := range []struct {
		name string
		w    bench.Wheel
	}{
		{"parent", bench.Wheel{Name: "x", Version: "1", Files: map[string]string{"../x.py": ""}}},
		{"absolute", bench.Wheel{Name: "x", Version: "1", Files: map[string]string{"/x.py": ""}}},
		{"its own RECORD", bench.Wheel{Name: "x", Version: "1", Files: map[string]string{"x-1.dist-info/RECORD": ""}}},
		{"name with a dash", bench.Wheel{Name: "x-y", Version: "1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.w.Bytes(); err == nil {
				t.Error("accepted")
			}
		})
	}
}
