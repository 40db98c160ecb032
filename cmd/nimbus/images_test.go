package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	dockerbuild "github.com/nimbusfaas/nimbus/internal/driver/docker/build"
	microvmbuild "github.com/nimbusfaas/nimbus/internal/driver/microvm/build"
	"github.com/nimbusfaas/nimbus/internal/image"
	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/testenv"
)

// TestImagesHoldTheSameStdlib checks that the Docker image and the microVM
// root file system `nimbus images build` and `nimbus microvm build` make
// for Python hold the same standard library, the one image.SkipStdlib
// keeps: json/ in, test/ and site-packages/ out.
func TestImagesHoldTheSameStdlib(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	in, _ := runtime.FindInterpreters(ctx, os.LookupEnv)
	if in.Path(runtime.Python) == "" {
		testenv.Require(t, "python3", fmt.Errorf("found %+v", in))
	}
	layout, err := image.ProbePython(ctx, in.Path(runtime.Python))
	if err != nil {
		t.Fatal(err)
	}
	stdlib := func(t *image.Tree) []string {
		var out []string
		for _, p := range t.Paths() {
			for _, root := range layout.Roots() {
				if strings.HasPrefix(p, root+"/") {
					out = append(out, p)
					break
				}
			}
		}
		return out
	}
	docker, err := dockerbuild.Tree(ctx, runtime.Python, in)
	if err != nil {
		t.Fatal(err)
	}
	vm, _, err := microvmbuild.Rootfs(ctx, runtime.Python, in)
	if err != nil {
		t.Fatal(err)
	}
	d, m := stdlib(docker), stdlib(vm)
	if !slices.Equal(d, m) {
		for _, p := range d {
			if !slices.Contains(m, p) {
				t.Errorf("only in the Docker image: %s", p)
			}
		}
		for _, p := range m {
			if !slices.Contains(d, p) {
				t.Errorf("only in the microVM image: %s", p)
			}
		}
	}
	for _, c := range []struct {
		path string
		in   bool
	}{
		{layout.Stdlib + "/json/__init__.py", true},
		{layout.Stdlib + "/json", true},
		{layout.Stdlib + "/test", false},
		{layout.Stdlib + "/test/__init__.py", false},
		{layout.Stdlib + "/site-packages", false},
	} {
		if got := slices.Contains(d, c.path); got != c.in {
			t.Errorf("%s in the images: %v, want %v", c.path, got, c.in)
		}
	}
	for _, p := range d {
		if strings.Contains(p, "/site-packages/") || strings.Contains(p, "/test/") {
			t.Errorf("%s should be left out", p)
		}
	}
	if len(d) < 500 {
		t.Errorf("only %d stdlib files: the filter keeps too little", len(d))
	}
}
