package fn_test

import (
	"testing"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"abcdefghijk", 10, "abcdefg…"},
		{"ééééé", 6, "é…"}, // never half a character
	} {
		if got := fn.Truncate(tc.in, tc.max); got != tc.want || len(got) > tc.max {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}
