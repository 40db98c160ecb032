package build

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver/microvm"
	"github.com/nimbusfaas/nimbus/internal/image"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// rootfsLayout changes whenever what goes into a runtime image changes in a
// way its inputs do not show, so that images are rebuilt.
const rootfsLayout = "6"

// mksquashfsArgs are the image options: zstd decompresses fast, which
// matters under emulation.
var mksquashfsArgs = []string{"-noappend", "-comp", "zstd", "-Xcompression-level", "6", "-all-root", "-no-xattrs", "-quiet"}

// Rootfs is the file system of rt's runtime image: image.Collect's tree
// (the interpreter at its host path, its libraries, the standard library,
// time zones), the mount points the guest's init uses, the guest user and
// /etc/nimbus/interpreter, which names the interpreter's real path.
// interpreter is that path.
func Rootfs(ctx context.Context, rt string, in runtime.Interpreters) (t *image.Tree, interpreter string, err error) {
	t, err = image.Collect(ctx, rt, in)
	if err != nil {
		return nil, "", err
	}
	interpreter, err = filepath.EvalSymlinks(in.Path(rt))
	if err != nil {
		return nil, "", err
	}
	for _, d := range []string{"/tmp", "/var/task", "/opt/layers", "/proc", "/dev", "/sys/fs/cgroup", "/nimbus", "/etc/nimbus"} {
		t.Mkdir(d)
	}
	t.Gen("/etc/passwd", fmt.Sprintf("root:x:0:0:root:/root:/bin/sh\nnimbus:x:%d:%d:nimbus:/tmp:/bin/false\n", microvm.GuestUID, microvm.GuestGID))
	t.Gen("/etc/group", fmt.Sprintf("root:x:0:\nnimbus:x:%d:\n", microvm.GuestGID))
	t.Gen("/etc/nimbus/interpreter", interpreter+"\n")
	return t, interpreter, nil
}

// buildRootfs makes the runtime's squashfs image in dir unless it is there.
func buildRootfs(ctx context.Context, dir, rt string, in runtime.Interpreters, version string, say func(string, ...any)) (microvm.RuntimeImage, error) {
	t, interpreter, err := Rootfs(ctx, rt, in)
	if err != nil {
		return microvm.RuntimeImage{}, err
	}
	key := t.Hash(fmt.Sprintf("layout %s\nruntime %s\ninterpreter %s\nversion %s\nmksquashfs %q",
		rootfsLayout, rt, interpreter, version, mksquashfsArgs))[:16]
	name := "rootfs-" + rt + "-" + key + ".sqfs"
	out := filepath.Join(dir, name)
	img := microvm.RuntimeImage{Image: name, Interpreter: interpreter, Version: version}
	if st, err := os.Stat(out); err == nil {
		img.SizeBytes = st.Size()
		say("rootfs %s %s: cached (%d MiB)", rt, version, st.Size()>>20)
		return img, nil
	}
	t0 := time.Now()
	if err := squashfs(ctx, t, rt, out); err != nil {
		return microvm.RuntimeImage{}, err
	}
	st, err := os.Stat(out)
	if err != nil {
		return microvm.RuntimeImage{}, err
	}
	img.SizeBytes = st.Size()
	say("rootfs %s %s: %d files, %d MiB, built in %.1fs", rt, version, t.Len(), st.Size()>>20, time.Since(t0).Seconds())
	return img, nil
}

// squashfs stages the tree in a temporary directory beside out and makes
// the squashfs image out of it.
func squashfs(ctx context.Context, t *image.Tree, rt, out string) error {
	stage, err := os.MkdirTemp(filepath.Dir(out), ".stage-"+rt+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	if err := os.Chmod(stage, 0o755); err != nil { // the guest's root
		return err
	}
	if err := t.Stage(stage); err != nil {
		return err
	}
	tmp := out + ".tmp"
	args := append([]string{stage, tmp}, mksquashfsArgs...)
	cmd := exec.CommandContext(ctx, "mksquashfs", args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("mksquashfs: %w: %s", err, strings.TrimSpace(string(b)))
	}
	return os.Rename(tmp, out)
}
