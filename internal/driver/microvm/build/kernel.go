package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// guestModules are the kernel modules the guest loads, by name; their
// dependencies come along. Debian builds virtio and squashfs as modules.
var guestModules = []string{"virtio_ring", "virtio", "virtio_mmio", "virtio_console", "virtio_blk", "squashfs"}

// kernelFiles is what the build takes from a linux-image package.
type kernelFiles struct {
	version string            // "6.1.0-56-amd64"
	vmlinuz []byte            // the compressed boot image
	modules map[string][]byte // module name → .ko, the wanted ones and their dependencies
	order   []string          // module names in load order
}

// readKernelDeb reads the boot image and guestModules (with what they
// depend on) out of a linux-image .deb, through dpkg-deb.
func readKernelDeb(ctx context.Context, deb string) (*kernelFiles, error) {
	kf := &kernelFiles{modules: map[string][]byte{}}
	want := map[string]bool{}
	for _, m := range guestModules {
		want[m] = true
	}
	// A dependency outside the wanted set needs another pass; two are
	// plenty for virtio and squashfs.
	for pass := 0; pass < 4; pass++ {
		if err := scanDeb(ctx, deb, func(name string, r io.Reader) error {
			switch {
			case strings.HasPrefix(name, "./boot/vmlinuz-") && kf.vmlinuz == nil:
				kf.version = strings.TrimPrefix(name, "./boot/vmlinuz-")
				b, err := io.ReadAll(r)
				kf.vmlinuz = b
				return err
			case strings.HasSuffix(name, ".ko"):
				mod := moduleName(path.Base(name))
				if !want[mod] || kf.modules[mod] != nil {
					return nil
				}
				b, err := io.ReadAll(r)
				kf.modules[mod] = b
				return err
			}
			return nil
		}); err != nil {
			return nil, err
		}
		if kf.vmlinuz == nil {
			return nil, fmt.Errorf("%s holds no /boot/vmlinuz-*", filepath.Base(deb))
		}
		missing := false
		for mod := range want {
			b := kf.modules[mod]
			if b == nil {
				return nil, fmt.Errorf("%s holds no module %s", filepath.Base(deb), mod)
			}
			deps, err := moduleDeps(b)
			if err != nil {
				return nil, fmt.Errorf("module %s: %w", mod, err)
			}
			for _, d := range deps {
				if !want[d] {
					want[d] = true
					missing = true
				}
			}
		}
		if !missing {
			deps := map[string][]string{}
			for mod, b := range kf.modules {
				d, err := moduleDeps(b)
				if err != nil {
					return nil, fmt.Errorf("module %s: %w", mod, err)
				}
				deps[mod] = d
			}
			order, err := loadOrder(deps)
			if err != nil {
				return nil, err
			}
			kf.order = order
			return kf, nil
		}
	}
	return nil, errors.New("module dependencies do not settle")
}

// scanDeb calls fn for each regular file in a .deb's data archive.
func scanDeb(ctx context.Context, deb string, fn func(name string, r io.Reader) error) error {
	cmd := exec.CommandContext(ctx, "dpkg-deb", "--fsys-tarfile", deb)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("dpkg-deb: %w", err)
	}
	tr := tar.NewReader(out)
	var scanErr error
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			scanErr = err
			break
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if err := fn(h.Name, tr); err != nil {
			scanErr = err
			break
		}
	}
	if scanErr != nil {
		_ = cmd.Process.Kill()
	} else {
		_, _ = io.Copy(io.Discard, out)
	}
	if err := cmd.Wait(); err != nil && scanErr == nil {
		return fmt.Errorf("dpkg-deb --fsys-tarfile %s: %w: %s", filepath.Base(deb), err, strings.TrimSpace(stderr.String()))
	}
	if scanErr != nil {
		return fmt.Errorf("read %s: %w", filepath.Base(deb), scanErr)
	}
	return nil
}

// moduleName is the module a .ko file holds: "virtio-rng.ko" → "virtio_rng"
// is how depends= spells it.
func moduleName(file string) string {
	return strings.ReplaceAll(strings.TrimSuffix(file, ".ko"), "-", "_")
}

// moduleDeps reads the depends= entry of a module's .modinfo section.
func moduleDeps(ko []byte) ([]string, error) {
	f, err := elf.NewFile(bytes.NewReader(ko))
	if err != nil {
		return nil, err
	}
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, errors.New("no .modinfo section")
	}
	data, err := sec.Data()
	if err != nil {
		return nil, err
	}
	for _, kv := range bytes.Split(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			if len(v) == 0 {
				return nil, nil
			}
			return strings.Split(string(v), ","), nil
		}
	}
	return nil, nil
}

// loadOrder sorts modules (name → the modules it depends on) so that each
// comes after what it depends on.
func loadOrder(deps map[string][]string) ([]string, error) {
	names := make([]string, 0, len(deps))
	for n := range deps {
		names = append(names, n)
	}
	sort.Strings(names)
	var (
		order []string
		state = map[string]int{} // 1 visiting, 2 done
		visit func(string) error
	)
	visit = func(n string) error {
		switch state[n] {
		case 1:
			return fmt.Errorf("module dependency cycle at %s", n)
		case 2:
			return nil
		}
		if _, ok := deps[n]; !ok {
			return fmt.Errorf("module %s is needed but missing", n)
		}
		state[n] = 1
		for _, d := range deps[n] {
			if err := visit(d); err != nil {
				return err
			}
		}
		state[n] = 2
		order = append(order, n)
		return nil
	}
	for _, n := range names {
		if err := visit(n); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// extractVmlinux finds the compressed kernel inside a bzImage and
// decompresses it, as the kernel's scripts/extract-vmlinux does: an
// uncompressed ELF kernel boots about three times faster under emulation.
// gzip is decompressed here, xz and zstd by the xz and zstd commands.
func extractVmlinux(ctx context.Context, bz []byte) ([]byte, error) {
	formats := []struct {
		magic []byte
		cmd   string
	}{
		{[]byte{0xfd, '7', 'z', 'X', 'Z', 0x00}, "xz"},
		{[]byte{0x28, 0xb5, 0x2f, 0xfd}, "zstd"},
		{[]byte{0x1f, 0x8b, 0x08}, ""},
	}
	var tried []string
	for _, f := range formats {
		for off := 0; ; {
			i := bytes.Index(bz[off:], f.magic)
			if i < 0 {
				break
			}
			off += i
			out, err := decompress(ctx, f.cmd, bz[off:])
			if len(out) > 4 && bytes.Equal(out[:4], []byte("\x7fELF")) {
				return out, nil
			}
			if err != nil {
				tried = append(tried, err.Error())
			}
			off++
		}
	}
	if len(tried) > 0 {
		return nil, fmt.Errorf("no ELF kernel found in the boot image (%s)", strings.Join(tried, "; "))
	}
	return nil, errors.New("no compressed kernel found in the boot image")
}

// decompress decompresses data that may have trailing garbage: what comes
// out before the decompressor gives up is kept.
func decompress(ctx context.Context, cmd string, data []byte) ([]byte, error) {
	if cmd == "" {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, err
		}
		zr.Multistream(false)
		out, err := io.ReadAll(zr)
		if len(out) > 0 {
			err = nil
		}
		return out, err
	}
	if _, err := exec.LookPath(cmd); err != nil {
		return nil, fmt.Errorf("the kernel is %s-compressed and %s is not installed", cmd, cmd)
	}
	c := exec.CommandContext(ctx, cmd, "-dc")
	c.Stdin = bytes.NewReader(data)
	var out bytes.Buffer
	c.Stdout = &out
	err := c.Run() // trailing data makes it fail after a complete stream
	return out.Bytes(), err
}

// writeFileAtomic writes data to path through a temporary file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), mode)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}
