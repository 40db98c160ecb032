package image_test

import (
	"testing"

	"github.com/nimbusfaas/nimbus/internal/image"
)

// TestSkipStdlib pins the one standard-library filter both drivers'
// images are made with.
func TestSkipStdlib(t *testing.T) {
	const tag = "cpython-311"
	for _, c := range []struct {
		rel   string
		isDir bool
		skip  bool
	}{
		// What a handler imports stays.
		{"json", true, false},
		{"json/__init__.py", false, false},
		{"json/__pycache__/__init__.cpython-311.pyc", false, false},
		{"asyncio", true, false},
		{"email/mime", true, false},
		{"lib-dynload", true, false},
		{"lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so", false, false},
		{"lib-dynload/_json.cpython-311-x86_64-linux-gnu.so", false, false},
		{"_sysconfigdata__linux_x86_64-linux-gnu.py", false, false},
		{"unittest", true, false},
		{"pydoc.py", false, false},
		{"LICENSE.txt", false, false},
		// Tests, wherever they are.
		{"test", true, true},
		{"unittest/test", true, true},
		{"ctypes/test", true, true},
		{"distutils/tests", true, true},
		{"idlelib/idle_test", true, true},
		{"lib-dynload/_testcapi.cpython-311-x86_64-linux-gnu.so", false, true},
		{"lib-dynload/_testinternalcapi.cpython-311-x86_64-linux-gnu.so", false, true},
		{"lib-dynload/_ctypes_test.cpython-311-x86_64-linux-gnu.so", false, true},
		{"lib-dynload/xxlimited.cpython-311-x86_64-linux-gnu.so", false, true},
		{"lib-dynload/_xxtestfuzz.cpython-311-x86_64-linux-gnu.so", false, true},
		// Third-party packages: functions bring their own.
		{"site-packages", true, true},
		{"dist-packages", true, true},
		// No display, pip or interactive help in a function.
		{"tkinter", true, true},
		{"lib-dynload/_tkinter.cpython-311-x86_64-linux-gnu.so", false, true},
		{"idlelib", true, true},
		{"turtledemo", true, true},
		{"ensurepip", true, true},
		{"lib2to3", true, true},
		{"pydoc_data", true, true},
		// Build files and bytecode never loaded.
		{"config-3.11-x86_64-linux-gnu", true, true},
		{"email/config-x", true, false},
		{"libpython3.11.a", false, true},
		{"json/__pycache__/__init__.cpython-311.opt-1.pyc", false, true},
		{"json/__pycache__/__init__.cpython-311.opt-2.pyc", false, true},
		{"json/__pycache__/__init__.cpython-310.pyc", false, true},
	} {
		if got := image.SkipStdlib(c.rel, c.isDir, tag); got != c.skip {
			t.Errorf("SkipStdlib(%q, dir %v) = %v, want %v", c.rel, c.isDir, got, c.skip)
		}
	}
}
