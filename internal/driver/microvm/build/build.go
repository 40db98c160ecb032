package build

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver/microvm"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// Debian packages the artifacts come from.
const (
	kernelMetaPackage = "linux-image-amd64"
	busyboxPackage    = "busybox-static"
)

// Options says what Build makes and where.
type Options struct {
	Dir          string               // the artifacts directory (see microvm.DefaultDir)
	Interpreters runtime.Interpreters // the runtimes to make images of; an empty path is skipped
	// Progress, when set, is told what each step did.
	Progress func(format string, args ...any)
}

// Build makes the artifacts the driver boots: an uncompressed kernel from
// Debian's linux-image-amd64, an initramfs of busybox-static, the virtio
// modules and the guest agent, and a squashfs image per runtime holding the
// host's interpreter. It downloads the two packages with apt-get (into
// Dir/debs) unless the same versions are there, and builds each artifact
// only when its inputs changed: files are named by a hash of their inputs.
// The manifest is written last, and artifacts it no longer names removed.
func Build(ctx context.Context, o Options) (*microvm.Manifest, error) {
	if o.Dir == "" {
		return nil, errors.New("microvm build: no directory")
	}
	say := o.Progress
	if say == nil {
		say = func(string, ...any) {}
	}
	for _, tool := range []string{"apt-get", "apt-cache", "dpkg-deb", "mksquashfs", "ldd"} {
		if _, err := exec.LookPath(tool); err != nil {
			hint := ""
			if tool == "mksquashfs" {
				hint = " (apt-get install squashfs-tools)"
			}
			return nil, fmt.Errorf("microvm build: %s is not installed%s", tool, hint)
		}
	}
	debs := filepath.Join(o.Dir, "debs")
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return nil, fmt.Errorf("microvm build: %w", err)
	}
	start := time.Now()

	// Packages.
	meta, err := aptShow(ctx, kernelMetaPackage)
	if err != nil {
		return nil, fmt.Errorf("microvm build: %w", err)
	}
	kernelPkg := strings.TrimSpace(strings.SplitN(strings.Split(meta["Depends"], ",")[0], "(", 2)[0])
	if !strings.HasPrefix(kernelPkg, "linux-image-") {
		return nil, fmt.Errorf("microvm build: %s depends on %q, not a linux-image package", kernelMetaPackage, meta["Depends"])
	}
	kernelDeb, err := fetchDeb(ctx, debs, kernelPkg, say)
	if err != nil {
		return nil, fmt.Errorf("microvm build: %w", err)
	}
	busyboxDeb, err := fetchDeb(ctx, debs, busyboxPackage, say)
	if err != nil {
		return nil, fmt.Errorf("microvm build: %w", err)
	}

	// Kernel and modules.
	kdir := filepath.Join(o.Dir, "kernel-"+kernelDeb.sum[:16])
	kver, order, err := buildKernel(ctx, kernelDeb.path, kdir, say)
	if err != nil {
		return nil, fmt.Errorf("microvm build: kernel: %w", err)
	}

	// Initramfs.
	h := sha256.New()
	fmt.Fprintf(h, "kernel %s\nbusybox %s\nagent %s\nmodules %q\n", kernelDeb.sum, busyboxDeb.sum, microvm.AgentVersion(), order)
	initrd := "initramfs-" + hex.EncodeToString(h.Sum(nil))[:16] + ".cpio"
	if err := buildInitramfs(ctx, busyboxDeb.path, kdir, order, filepath.Join(o.Dir, initrd), say); err != nil {
		return nil, fmt.Errorf("microvm build: initramfs: %w", err)
	}

	// Runtime images.
	m := &microvm.Manifest{
		Format:        microvm.ManifestFormat,
		Agent:         microvm.AgentVersion(),
		Kernel:        filepath.Join(filepath.Base(kdir), "vmlinux"),
		KernelVersion: kver,
		Initramfs:     initrd,
		Runtimes:      map[string]microvm.RuntimeImage{},
	}
	in := o.Interpreters
	for _, rt := range runtime.Names() {
		if in.Path(rt) == "" {
			say("rootfs %s: skipped, no interpreter found", rt)
			continue
		}
		img, err := buildRootfs(ctx, o.Dir, rt, in, in.Version(rt), say)
		if err != nil {
			return nil, fmt.Errorf("microvm build: %s image: %w", rt, err)
		}
		m.Runtimes[rt] = img
	}
	if len(m.Runtimes) == 0 {
		return nil, fmt.Errorf("microvm build: no %s interpreter found to make a runtime image of", runtime.Commands())
	}

	m.BuiltAt = time.Now().UTC()
	b, _ := json.MarshalIndent(m, "", "  ")
	if err := writeFileAtomic(filepath.Join(o.Dir, microvm.ManifestName), append(b, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("microvm build: %w", err)
	}
	prune(o.Dir, m, kernelDeb.path, busyboxDeb.path)
	say("done in %.1fs: %s", time.Since(start).Seconds(), filepath.Join(o.Dir, microvm.ManifestName))
	return m, nil
}

// aptShow returns the fields of the candidate version of pkg.
func aptShow(ctx context.Context, pkg string) (map[string]string, error) {
	out, err := exec.CommandContext(ctx, "apt-cache", "show", "--no-all-versions", pkg).Output()
	if err != nil || len(bytes.TrimSpace(out)) == 0 {
		return nil, fmt.Errorf("apt-cache show %s: no such package known (run apt-get update first): %v", pkg, err)
	}
	fields := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			break // the first stanza only
		}
		if k, v, ok := strings.Cut(line, ": "); ok && !strings.HasPrefix(line, " ") {
			fields[k] = v
		}
	}
	return fields, nil
}

type deb struct {
	path, sum string
}

// fetchDeb makes sure dir holds the candidate version of pkg, checked
// against the archive's SHA-256, and downloads it with apt-get otherwise.
func fetchDeb(ctx context.Context, dir, pkg string, say func(string, ...any)) (deb, error) {
	f, err := aptShow(ctx, pkg)
	if err != nil {
		return deb{}, err
	}
	want := f["SHA256"]
	name := fmt.Sprintf("%s_%s_%s.deb", pkg, strings.ReplaceAll(f["Version"], ":", "%3a"), f["Architecture"])
	path := filepath.Join(dir, name)
	if sum, err := sha256File(path); err == nil && (want == "" || sum == want) {
		say("package %s %s: cached", pkg, f["Version"])
		return deb{path, sum}, nil
	}
	t0 := time.Now()
	cmd := exec.CommandContext(ctx, "apt-get", "download", "-q", pkg+"="+f["Version"])
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		return deb{}, fmt.Errorf("apt-get download %s: %w: %s", pkg, err, strings.TrimSpace(string(b)))
	}
	sum, err := sha256File(path)
	if err != nil {
		return deb{}, fmt.Errorf("apt-get download %s: %w", pkg, err)
	}
	if want != "" && sum != want {
		os.Remove(path)
		return deb{}, fmt.Errorf("apt-get download %s: SHA-256 %s, the archive says %s", pkg, sum, want)
	}
	say("package %s %s: downloaded in %.1fs", pkg, f["Version"], time.Since(t0).Seconds())
	return deb{path, sum}, nil
}

func sha256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// buildKernel fills kdir with vmlinux, the guest modules and their load
// order (modules/order), unless it is complete already.
func buildKernel(ctx context.Context, debPath, kdir string, say func(string, ...any)) (version string, order []string, err error) {
	if b, err := os.ReadFile(filepath.Join(kdir, "modules", "order")); err == nil {
		if v, err := os.ReadFile(filepath.Join(kdir, "version")); err == nil {
			if _, err := os.Stat(filepath.Join(kdir, "vmlinux")); err == nil {
				say("kernel %s: cached", strings.TrimSpace(string(v)))
				return strings.TrimSpace(string(v)), strings.Fields(string(b)), nil
			}
		}
	}
	t0 := time.Now()
	kf, err := readKernelDeb(ctx, debPath)
	if err != nil {
		return "", nil, err
	}
	vmlinux, err := extractVmlinux(ctx, kf.vmlinuz)
	if err != nil {
		return "", nil, err
	}
	tmp := kdir + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(filepath.Join(tmp, "modules"), 0o755); err != nil {
		return "", nil, err
	}
	files := map[string][]byte{"vmlinux": vmlinux, "version": []byte(kf.version + "\n"), "modules/order": []byte(strings.Join(kf.order, "\n") + "\n")}
	for name, b := range kf.modules {
		files["modules/"+name+".ko"] = b
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), b, 0o644); err != nil {
			os.RemoveAll(tmp)
			return "", nil, err
		}
	}
	os.RemoveAll(kdir)
	if err := os.Rename(tmp, kdir); err != nil {
		return "", nil, err
	}
	say("kernel %s: vmlinux %d MiB and %d modules extracted in %.1fs", kf.version, len(vmlinux)>>20, len(kf.order), time.Since(t0).Seconds())
	return kf.version, kf.order, nil
}

// buildInitramfs writes the initramfs to out unless it is there.
func buildInitramfs(ctx context.Context, busyboxDeb, kdir string, order []string, out string, say func(string, ...any)) error {
	if _, err := os.Stat(out); err == nil {
		say("initramfs: cached")
		return nil
	}
	var busybox []byte
	err := scanDeb(ctx, busyboxDeb, func(name string, r io.Reader) error {
		if name == "./bin/busybox" {
			b, err := io.ReadAll(r)
			busybox = b
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	if busybox == nil {
		return fmt.Errorf("%s holds no /bin/busybox", filepath.Base(busyboxDeb))
	}
	guest := microvm.Guest()
	entries := []cpioEntry{
		{name: "init", mode: modeReg | 0o755, data: guest.Init},
		{name: "nimbus/busybox", mode: modeReg | 0o755, data: busybox},
	}
	for _, a := range guest.Agents {
		entries = append(entries, cpioEntry{name: "nimbus/" + a.Name, mode: modeReg | 0o644, data: a.Data})
	}
	entries = append(entries, []cpioEntry{
		{name: "modules/order", mode: modeReg | 0o644, data: []byte(strings.Join(order, "\n") + "\n")},
		{name: "dev/console", mode: modeChar | 0o600, major: 5, minor: 1},
		{name: "proc", mode: modeDir | 0o755},
		{name: "sys", mode: modeDir | 0o755},
		{name: "rt", mode: modeDir | 0o755},
		{name: "tmp", mode: modeDir | 0o1777},
	}...)
	for _, m := range order {
		b, err := os.ReadFile(filepath.Join(kdir, "modules", m+".ko"))
		if err != nil {
			return err
		}
		entries = append(entries, cpioEntry{name: "modules/" + m + ".ko", mode: modeReg | 0o644, data: b})
	}
	var buf bytes.Buffer
	if err := writeCpio(&buf, entries); err != nil {
		return err
	}
	if err := writeFileAtomic(out, buf.Bytes(), 0o644); err != nil {
		return err
	}
	say("initramfs: %d KiB built", buf.Len()>>10)
	return nil
}

// prune removes artifacts and packages the manifest no longer uses.
func prune(dir string, m *microvm.Manifest, debsInUse ...string) {
	keep := map[string]bool{
		microvm.ManifestName:   true,
		"debs":                 true,
		filepath.Dir(m.Kernel): true,
		m.Initramfs:            true,
	}
	for _, img := range m.Runtimes {
		keep[img.Image] = true
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		n := e.Name()
		if keep[n] {
			continue
		}
		if strings.HasPrefix(n, "kernel-") || strings.HasPrefix(n, "initramfs-") || strings.HasPrefix(n, "rootfs-") {
			os.RemoveAll(filepath.Join(dir, n))
		}
	}
	inUse := map[string]bool{}
	for _, d := range debsInUse {
		inUse[filepath.Base(d)] = true
	}
	debs, _ := os.ReadDir(filepath.Join(dir, "debs"))
	var names []string
	for _, e := range debs {
		if !inUse[e.Name()] && strings.HasSuffix(e.Name(), ".deb") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, n := range names {
		os.Remove(filepath.Join(dir, "debs", n))
	}
}
