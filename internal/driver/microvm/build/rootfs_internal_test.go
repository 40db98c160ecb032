package build

import (
	"archive/tar"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/testenv"
)

// TestRootfs checks what a runtime's root file system holds: the
// interpreter at its real path, named by /etc/nimbus/interpreter, the
// guest user, the mount points of the guest's init, the filtered stdlib;
// and, where mksquashfs is installed, that the squashfs image holds them.
func TestRootfs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	in, _ := runtime.FindInterpreters(ctx, os.LookupEnv)
	if in.Path(runtime.Python) == "" {
		testenv.Require(t, "python3", fmt.Errorf("found %+v", in))
	}
	tr, interp, err := Rootfs(ctx, runtime.Python, in)
	if err != nil {
		t.Fatal(err)
	}
	if real, _ := filepath.EvalSymlinks(in.Path(runtime.Python)); interp != real {
		t.Errorf("interpreter %s, want the real path %s", interp, real)
	}
	if e := tr.Entry("/etc/nimbus/interpreter"); e == nil || string(e.Data) != interp+"\n" {
		t.Errorf("/etc/nimbus/interpreter: %+v", e)
	}
	if e := tr.Entry("/etc/passwd"); e == nil || !strings.Contains(string(e.Data), "nimbus:x:1000:1000:") {
		t.Errorf("/etc/passwd: %+v", e)
	}
	for _, d := range []string{"/tmp", "/var/task", "/proc", "/dev", "/sys/fs/cgroup", "/nimbus"} {
		if e := tr.Entry(d); e == nil || e.Type != tar.TypeDir {
			t.Errorf("%s: %+v, want a directory", d, e)
		}
	}
	var json, tests bool
	for _, p := range tr.Paths() {
		json = json || strings.HasSuffix(p, "/json/__init__.py")
		tests = tests || strings.HasSuffix(p, "/test/__init__.py") || strings.Contains(p, "/site-packages/")
	}
	if !json || tests {
		t.Errorf("stdlib: json %v (want true), tests or site-packages %v (want false)", json, tests)
	}

	if _, err := exec.LookPath("mksquashfs"); err != nil {
		testenv.Require(t, "mksquashfs (make microvm installs squashfs-tools)", err)
	}
	out := filepath.Join(t.TempDir(), "rootfs.sqfs")
	if err := squashfs(ctx, tr, runtime.Python, out); err != nil {
		t.Fatal(err)
	}
	list, err := exec.CommandContext(ctx, "unsquashfs", "-lls", out).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"squashfs-root" + interp, "squashfs-root/etc/nimbus/interpreter", "squashfs-root/tmp"} {
		if !strings.Contains(string(list), want+"\n") && !strings.Contains(string(list), want+" ") {
			t.Errorf("the image lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("unsquashfs -lls:\n%.3000s", list)
	}
}
