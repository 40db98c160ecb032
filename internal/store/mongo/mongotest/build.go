package mongotest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// helperTags leave out FerretDB's PostgreSQL backend, which the tests do
// not use: a smaller, faster build.
const helperTags = "ferretdb_no_postgresql"

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// helperBinary returns the path of the built FerretDB helper, building it
// first if this machine has no build of the current sources.
func helperBinary() (string, error) {
	buildOnce.Do(func() { builtBin, buildErr = buildHelper() })
	return builtBin, buildErr
}

func buildHelper() (string, error) {
	src, err := helperSource()
	if err != nil {
		return "", err
	}
	key, err := sourceKey(src)
	if err != nil {
		return "", err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "nimbus-test")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "ferretdb-"+key)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}

	// One build at a time on this machine: go test runs test binaries in
	// parallel, and each may want the helper.
	lock, err := os.OpenFile(filepath.Join(dir, "ferretdb.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil // built by another process while we waited
	}

	start := time.Now()
	fmt.Fprintf(os.Stderr, "mongotest: building the FerretDB test helper from %s (the first build takes a few minutes)\n", src)
	tmp := fmt.Sprintf("%s.tmp%d", bin, os.Getpid())
	cmd := exec.Command(goTool(), "build", "-tags", helperTags, "-trimpath", "-buildvcs=false", "-o", tmp, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("go build of the FerretDB helper in %s: %w\n%s", src, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "mongotest: built the FerretDB test helper in %s: %s\n", time.Since(start).Round(time.Second), bin)
	removeStale(dir, bin)
	return bin, nil
}

// helperSource finds tools/ferretdb: beside this file's module root when
// the sources are where they were compiled, else from `go env GOMOD` run
// in the test's directory (a package of the module).
func helperSource() (string, error) {
	var roots []string
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		// file is <root>/internal/store/mongo/mongotest/build.go
		roots = append(roots, filepath.Join(filepath.Dir(file), "..", "..", "..", ".."))
	}
	if out, err := exec.Command(goTool(), "env", "GOMOD").Output(); err == nil {
		if mod := strings.TrimSpace(string(out)); mod != "" && mod != os.DevNull {
			roots = append(roots, filepath.Dir(mod))
		}
	}
	for _, root := range roots {
		src := filepath.Join(root, "tools", "ferretdb")
		if _, err := os.Stat(filepath.Join(src, "go.mod")); err == nil {
			return filepath.Clean(src), nil
		}
	}
	return "", errors.New("cannot find tools/ferretdb in the nimbus sources")
}

// sourceKey hashes what the helper binary depends on: its module files
// and Go sources, the Go version, the platform and the build tags.
func sourceKey(src string) (string, error) {
	files, err := filepath.Glob(filepath.Join(src, "*.go"))
	if err != nil {
		return "", err
	}
	files = append(files, filepath.Join(src, "go.mod"), filepath.Join(src, "go.sum"))
	slices.Sort(files)
	h := sha256.New()
	fmt.Fprintln(h, runtime.Version(), runtime.GOOS, runtime.GOARCH, helperTags)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", filepath.Base(f), len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// removeStale deletes builds of older sources.
func removeStale(dir, keep string) {
	old, _ := filepath.Glob(filepath.Join(dir, "ferretdb-*"))
	for _, f := range old {
		if f != keep && !strings.Contains(filepath.Base(f), ".tmp") {
			os.Remove(f)
		}
	}
}

// goTool is the go command of the toolchain running the tests, else the
// one on PATH.
func goTool() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
