package driver_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/fn"
)

func TestInstanceSpecLayers(t *testing.T) {
	code, l0, l1 := t.TempDir(), t.TempDir(), t.TempDir()
	f := &fn.Function{Name: "f", Handler: "main.handler", Revision: 2, Memory: 128}
	spec := driver.InstanceSpec{Function: f, Code: code, Layers: []string{l0, l1}}
	if err := spec.Check(); err != nil {
		t.Fatal(err)
	}
	in := spec.Init("/var/task", nil)
	if want := []string{"/opt/layers/0", "/opt/layers/1"}; !slices.Equal(in.Layers, want) {
		t.Errorf("init layers %q, want %q", in.Layers, want)
	}
	if in := (driver.InstanceSpec{Function: f}).Init("/var/task", nil); in.Layers != nil {
		t.Errorf("init layers %q without layers, want none", in.Layers)
	}
	file := filepath.Join(code, "main.py")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]driver.InstanceSpec{
		"relative code":   {Function: f, Code: "code"},
		"missing code":    {Function: f, Code: filepath.Join(code, "nothere")},
		"code is a file":  {Function: f, Code: file},
		"missing layer":   {Function: f, Code: code, Layers: []string{l0, filepath.Join(l1, "nothere")}},
		"relative layer":  {Function: f, Layers: []string{"layer"}},
		"layer is a file": {Function: f, Layers: []string{file}},
	} {
		if err := bad.Check(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
