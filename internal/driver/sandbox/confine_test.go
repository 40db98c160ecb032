package sandbox_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// TestConfinedSyntaxCheck: a syntax checker confined by the sandbox's
// cgroups to 64 MB checks a small source, and is killed (ErrCheckKilled)
// by a source whose compilation needs far more, instead of taking the
// host's memory.
func TestConfinedSyntaxCheck(t *testing.T) {
	h := newHarness(t)
	d := h.driver(t, nil)
	released := 0
	c := runtime.NewChecker(h.interp, 1, func(pid int) (func(), error) {
		release, err := d.Confine(pid, 64)
		return func() { released++; release() }, err
	})
	ctx := context.Background()
	if err := c.Check(ctx, runtime.Python, map[string]string{"main.py": "def handler(e, c):\n    return 1\n"}); err != nil {
		t.Fatalf("a small source: %v", err)
	}
	huge := "x = [" + strings.Repeat("1,", 2_000_000) + "]\n" // ~4 MB, hundreds of MB to compile
	if err := c.Check(ctx, runtime.Python, map[string]string{"main.py": huge}); !errors.Is(err, runtime.ErrCheckKilled) {
		t.Fatalf("a source too large to compile in 64 MB: %v, want ErrCheckKilled", err)
	}
	if released != 2 {
		t.Errorf("%d cgroups released, want 2", released)
	}
}
