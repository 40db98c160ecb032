package cli_test

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden help files in testdata/help")

// commandPaths walks the command tree as `--help` shows it: each
// "commands:" section lists the full paths of a command's subcommands.
func commandPaths(t *testing.T, c *client, path []string) [][]string {
	t.Helper()
	out := c.ok(append(slices.Clone(path), "--help")...).stdout
	all := [][]string{path}
	// Subcommands are listed between the usage line and the flags, by
	// their full paths: "  nimbus fn list  list the functions".
	_, lists, _ := strings.Cut(out, "\nusage: ")
	lists, _, _ = strings.Cut(lists, "\nflags:\n")
	re := regexp.MustCompile(`(?m)^  nimbus((?: [a-z][a-z-]*)+?) {2,}\S`)
	for _, m := range re.FindAllStringSubmatch(lists, -1) {
		sub := strings.Fields(m[1])
		if len(sub) != len(path)+1 || !slices.Equal(sub[:len(path)], path) {
			t.Fatalf("%v lists %v as a subcommand", path, sub)
		}
		all = append(all, commandPaths(t, c, sub)...)
	}
	return all
}

// Every command's --help exits 0, prints to standard output, and is the
// text in testdata/help (go test ./test/cli -run TestHelp -update
// rewrites it): a change of a flag or a description shows in review.
func TestHelp(t *testing.T) {
	c := newClient(t, "")
	paths := commandPaths(t, c, nil)
	if len(paths) < 25 {
		t.Fatalf("found %d commands, want every one: %v", len(paths), paths)
	}
	seen := map[string]bool{}
	for _, p := range paths {
		name := "nimbus"
		if len(p) > 0 {
			name += "_" + strings.Join(p, "_")
		}
		file := filepath.Join("testdata", "help", name+".txt")
		seen[file] = true
		t.Run(strings.Join(append([]string{"nimbus"}, p...), " "), func(t *testing.T) {
			r := c.run("", append(slices.Clone(p), "--help")...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("exit status %d, stderr %q; want 0 and nothing", r.code, r.stderr)
			}
			if short := c.run("", append(slices.Clone(p), "-h")...); short.stdout != r.stdout || short.code != 0 {
				t.Errorf("-h differs from --help")
			}
			if *update {
				if err := os.WriteFile(file, []byte(r.stdout), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			if r.stdout != string(want) {
				t.Errorf("help differs from %s (run with -update if the change is meant):\n got:\n%s\nwant:\n%s", file, r.stdout, want)
			}
		})
	}
	// A golden file of a command that is gone is stale.
	files, _ := filepath.Glob(filepath.Join("testdata", "help", "*.txt"))
	for _, f := range files {
		if !seen[f] {
			if *update {
				os.Remove(f)
				continue
			}
			t.Errorf("%s: no such command any more (run with -update)", f)
		}
	}
}
