package deps_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/build/deps"
	"github.com/nimbusfaas/nimbus/internal/build/deps/depstest"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// TestCollect: Collect removes the layers not kept, read-only as they
// are, and what interrupted builds left in tmp; it keeps the rest and
// anything that is not a layer.
func TestCollect(t *testing.T) {
	b := newBuilder(t, runtime.Python, func(c *deps.Config) { c.PipFindLinks = demoWheels(t) })
	p := plan(t, b, runtime.Python, map[string]string{"requirements.txt": "nimbusdemo\n"}, false)
	built, _, err := b.Build(context.Background(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(built)
	// A layer no longer wanted, sealed as Build seals them.
	oldKey := strings.Repeat("ab", 32)
	unkept := filepath.Join(dir, oldKey)
	os.MkdirAll(filepath.Join(unkept, "python", "pkg"), 0o755)
	os.WriteFile(filepath.Join(unkept, "python", "pkg", "__init__.py"), nil, 0o444)
	for _, d := range []string{"python/pkg", "python", "."} {
		os.Chmod(filepath.Join(unkept, d), 0o555)
	}
	other := filepath.Join(dir, "not-a-layer")
	os.Mkdir(other, 0o755)
	stale := filepath.Join(dir, "tmp", "CRASHED", "work", "layer")
	os.MkdirAll(stale, 0o755)
	os.WriteFile(filepath.Join(stale, "f"), []byte("x"), 0o444)
	os.Chmod(stale, 0o555)

	removed, err := b.Collect(map[string]bool{p.Key: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{oldKey}) {
		t.Errorf("removed %v, want [%s]", removed, oldKey)
	}
	for _, gone := range []string{unkept, filepath.Join(dir, "tmp", "CRASHED")} {
		if _, err := os.Stat(gone); !os.IsNotExist(err) {
			t.Errorf("%s is still there: %v", gone, err)
		}
	}
	for _, kept := range []string{built, other} {
		if _, err := os.Stat(kept); err != nil {
			t.Errorf("%s: %v", kept, err)
		}
	}
	if got := pythonAnswer(t, depstest.WheelPython, built); got != "42" {
		t.Errorf("the kept layer no longer works: %q", got)
	}
	// A collected layer is built again.
	removed, err = b.Collect(nil)
	if err != nil || !slices.Equal(removed, []string{p.Key}) {
		t.Fatalf("Collect(nil) = %v, %v; want [%s]", removed, err, p.Key)
	}
	if _, cached, err := b.Build(context.Background(), p, nil); err != nil || cached {
		t.Errorf("Build of a collected layer: cached %v, %v; want it built", cached, err)
	}
}

// TestPipIndex: with an index (here a PEP 503 simple index on loopback),
// pip installs from it, in the host's network: the index is asked.
func TestPipIndex(t *testing.T) {
	wheel := demoWheel(t)
	idx := newSimpleIndex(t, wheel)
	b := newBuilder(t, runtime.Python, func(c *deps.Config) { c.PipIndexURL = idx.URL + "/simple/" })
	p := plan(t, b, runtime.Python, map[string]string{"requirements.txt": "nimbusdemo==1.0\n"}, false)
	var log logBuffer
	dir, _, err := b.Build(context.Background(), p, &log)
	if err != nil {
		t.Fatalf("Build: %v\nlog:\n%s", err, log.String())
	}
	if got := pythonAnswer(t, depstest.WheelPython, dir); got != "42" {
		t.Errorf("nimbusdemo.answer() = %q, want 42", got)
	}
	if idx.wheels.Load() != 1 {
		t.Errorf("the index served the wheel %d times, want 1", idx.wheels.Load())
	}
	if !strings.Contains(log.String(), "Looking in indexes: "+idx.URL) {
		t.Errorf("log:\n%s\nwant pip to look in the index", log.String())
	}
}
