package runtime

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	_ "embed"
)

// The language shims, embedded in the binary.
var (
	//go:embed python/bootstrap.py
	pythonShim []byte
	//go:embed node/bootstrap.js
	nodeShim []byte
	//go:embed python/zygote.py
	pythonZygote []byte
)

// Shim file names inside an installed shim directory.
const (
	PythonShimName = "bootstrap.py"
	NodeShimName   = "bootstrap.js"
	// PythonZygoteName, beside the Python shim, is the sandbox driver's
	// forking zygote: it imports the shim and forks workers from it.
	PythonZygoteName = "zygote.py"
)

// Paths are the absolute paths of installed shims, one per runtime.
type Paths struct {
	Python string // …/bootstrap.py: run as `python -I -B <Python>`
	Node   string // …/bootstrap.js: run as `node <Node>`
}

// ShimVersion is a short hash of the shims' content: InstallShims writes
// them under a directory of that name.
func ShimVersion() string {
	h := sha256.New()
	for _, b := range [][]byte{pythonShim, nodeShim, pythonZygote} {
		fmt.Fprintf(h, "%d\n", len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// InstallShims writes the shims under dir/<ShimVersion()>/ and returns their
// absolute paths. It is idempotent and safe to call concurrently, from
// several processes too: files already in place with the right content are
// left alone, and others are written to a temporary name and renamed.
func InstallShims(dir string) (Paths, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Paths{}, fmt.Errorf("install shims: %w", err)
	}
	d := filepath.Join(abs, ShimVersion())
	if err := os.MkdirAll(d, 0o755); err != nil {
		return Paths{}, fmt.Errorf("install shims: %w", err)
	}
	p := Paths{
		Python: filepath.Join(d, PythonShimName),
		Node:   filepath.Join(d, NodeShimName),
	}
	for _, f := range []struct {
		path string
		data []byte
	}{{p.Python, pythonShim}, {p.Node, nodeShim}, {filepath.Join(d, PythonZygoteName), pythonZygote}} {
		if err := writeFileOnce(f.path, f.data); err != nil {
			return Paths{}, fmt.Errorf("install shims: %w", err)
		}
	}
	return p, nil
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
