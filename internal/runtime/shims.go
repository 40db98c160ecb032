package runtime

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
)

// Shims is a directory InstallShims wrote: every runtime's shim, and the
// helpers (zygotes) that run beside it.
type Shims struct {
	Dir string // absolute; "" when no shims are installed
}

// Shim is the path of runtime rt's installed shim, "" if there is none.
func (s Shims) Shim(rt string) string {
	return s.file(rt, func(r *Runtime) string { return r.Shim })
}

// Zygote is the path of runtime rt's installed zygote, "" if there is none.
func (s Shims) Zygote(rt string) string {
	return s.file(rt, func(r *Runtime) string { return r.Zygote })
}

func (s Shims) file(rt string, name func(*Runtime) string) string {
	r, ok := Lookup(rt)
	if !ok || s.Dir == "" || name(r) == "" {
		return ""
	}
	return filepath.Join(s.Dir, name(r))
}

// shimFiles are the files InstallShims writes, by name: every runtime's
// shim and zygote.
func shimFiles() (names []string, data map[string][]byte) {
	data = map[string][]byte{}
	for _, r := range table {
		for _, n := range []string{r.Shim, r.Zygote} {
			if n != "" {
				names = append(names, n)
				data[n] = r.source(n)
			}
		}
	}
	return names, data
}

// ShimVersion is a short hash of the shims' content: InstallShims writes
// them under a directory of that name.
func ShimVersion() string {
	names, data := shimFiles()
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s %d\n", n, len(data[n]))
		h.Write(data[n])
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// InstallShims writes the shims under dir/<ShimVersion()>/ and returns that
// directory. It is idempotent and safe to call concurrently, from several
// processes too: files already in place with the right content are left
// alone, and others are written to a temporary name and renamed.
func InstallShims(dir string) (Shims, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Shims{}, fmt.Errorf("install shims: %w", err)
	}
	d := filepath.Join(abs, ShimVersion())
	if err := os.MkdirAll(d, 0o755); err != nil {
		return Shims{}, fmt.Errorf("install shims: %w", err)
	}
	names, data := shimFiles()
	for _, n := range names {
		if err := writeFileOnce(filepath.Join(d, n), data[n]); err != nil {
			return Shims{}, fmt.Errorf("install shims: %w", err)
		}
	}
	return Shims{Dir: d}, nil
}

// writeFileOnce makes path hold data, atomically, unless it already does.
func writeFileOnce(path string, data []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}
