package cli_test

import (
	"strings"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/cli"
)

func TestIgnore(t *testing.T) {
	ig, err := cli.ParseIgnore(strings.NewReader(`# comment
*.log
!keep.log
build/
/top.txt
docs/**/*.md
a?c
[xy].bin
\#hash
node_modules
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path  string
		isDir bool
		want  bool
	}{
		{"x.log", false, true},
		{"deep/dir/x.log", false, true},
		{"keep.log", false, false},
		{"sub/keep.log", false, false},
		{"build", true, true},
		{"sub/build", true, true},
		{"build", false, false}, // build/ matches directories only
		{"top.txt", false, true},
		{"sub/top.txt", false, false}, // anchored at the root
		{"docs/a.md", false, true},
		{"docs/x/y/a.md", false, true},
		{"other/a.md", false, false},
		{"abc", false, true},
		{"abbc", false, false},
		{"x.bin", false, true},
		{"z.bin", false, false},
		{"#hash", false, true},
		{"node_modules", true, true},
		{"main.py", false, false},
		{"logs/main.py", false, false},
	} {
		if got := ig.Match(tc.path, tc.isDir); got != tc.want {
			t.Errorf("Match(%q, dir=%v) = %v, want %v", tc.path, tc.isDir, got, tc.want)
		}
	}
	var none *cli.Ignore
	if none.Match("x", false) {
		t.Error("a nil Ignore ignores")
	}
}
