package fn_test

import (
	"testing"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

func TestScrubPaths(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"fork/exec /root/.pyenv/versions/3.11.7/bin/python3: permission denied", "fork/exec …/python3: permission denied"},
		{`open "/var/lib/nimbus/sandbox/instances/abc/main.py": no space left`, `open "…/main.py": no space left`},
		{"microVM artifacts missing in /var/cache/nimbus/microvm (run nimbus microvm build)", "microVM artifacts missing in …/microvm (run nimbus microvm build)"},
		{"no path here, just text / and a/b relative", "no path here, just text / and a/b relative"},
		{"/main.py is not clean", "/main.py is not clean"},
	} {
		if got := fn.ScrubPaths(tc.in); got != tc.want {
			t.Errorf("ScrubPaths(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
