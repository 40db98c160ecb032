package bench

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Wheel is a pure-Python package to write as a wheel (PEP 427), so that
// pip can install it offline from a --find-links directory without pip
// wheel, setuptools or a build backend: a wheel is a zip of the package's
// files and a dist-info directory that describes them.
type Wheel struct {
	Name    string            // distribution name, as requirements name it: "nimbusbench"
	Version string            // "1.0"
	Files   map[string]string // path in site-packages → content: "nimbusbench/__init__.py"
}

// wheelName is what a distribution's name may be here: letters, digits
// and underscores, so that it needs no normalising in file names.
var wheelName = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// FileName is the wheel's file name: <name>-<version>-py3-none-any.whl.
func (w Wheel) FileName() string { return w.Name + "-" + w.Version + "-py3-none-any.whl" }

// Bytes is the wheel, the same bytes for the same Wheel: its entries in
// path order, with a fixed time.
func (w Wheel) Bytes() ([]byte, error) {
	if !wheelName.MatchString(w.Name) || !wheelName.MatchString(strings.ReplaceAll(w.Version, ".", "_")) {
		return nil, fmt.Errorf("bench: wheel %q %q: name and version may hold letters, digits, _ (and . in the version)", w.Name, w.Version)
	}
	info := w.Name + "-" + w.Version + ".dist-info/"
	files := map[string]string{
		info + "METADATA": "Metadata-Version: 2.1\nName: " + w.Name + "\nVersion: " + w.Version + "\n",
		info + "WHEEL":    "Wheel-Version: 1.0\nGenerator: nimbus-bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
	}
	for p, c := range w.Files {
		if strings.HasPrefix(p, info) || p == "" || strings.HasPrefix(p, "/") || slices.Contains(strings.Split(p, "/"), "..") {
			return nil, fmt.Errorf("bench: wheel file %q: not a relative path of the package", p)
		}
		files[p] = c
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	// RECORD lists every file with its hash (urlsafe base64 of the SHA-256,
	// unpadded) and size; RECORD itself has neither.
	var record strings.Builder
	for _, p := range paths {
		sum := sha256.Sum256([]byte(files[p]))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", p, base64.RawURLEncoding.EncodeToString(sum[:]), len(files[p]))
	}
	fmt.Fprintf(&record, "%sRECORD,,\n", info)
	files[info+"RECORD"] = record.String()
	paths = append(paths, info+"RECORD") // last, as pip writes it

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	modified := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, p := range paths {
		hdr := &zip.FileHeader{Name: p, Method: zip.Deflate, Modified: modified}
		hdr.SetMode(0o644)
		f, err := zw.CreateHeader(hdr)
		if err != nil {
			return nil, err
		}
		if _, err := f.Write([]byte(files[p])); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Write writes the wheel into dir, readable by everyone (a dependency
// build runs as an unprivileged user), and returns its path.
func (w Wheel) Write(dir string) (string, error) {
	b, err := w.Bytes()
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, w.FileName())
	if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, b) {
		return p, nil
	}
	tmp, err := os.CreateTemp(dir, ".wheel-")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return "", err
	}
	return p, os.Rename(tmp.Name(), p)
}
