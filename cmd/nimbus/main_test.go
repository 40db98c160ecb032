package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"testing"
)

// asNimbus makes the test binary run as nimbus (see TestMain).
const asNimbus = "NIMBUS_TEST_RUN_AS_NIMBUS"

// nimbus runs this test binary as `nimbus args...` in an empty directory
// and returns its output and exit status.
func nimbus(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), asNimbus+"=1")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("nimbus %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

// Every command prints its usage, its flags and what they mean on
// standard output for --help and -h, and exits 0.
func TestHelpOfEveryCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string // in the output: flags and their descriptions
	}{
		{[]string{"serve"}, []string{"usage: nimbus serve", "-port", "HTTP port", "-host", "address to bind", "-data-dir", "-env-file", "-insecure"}},
		{[]string{"bench"}, []string{"usage: nimbus bench", "-url", "measure the Nimbus at this URL", "-duration", "-colds", "-deploys", "-pip-find-links", "-concurrency", "-json", "-cpuprofile"}},
		{[]string{"simulate"}, []string{"usage: nimbus simulate", "-days", "simulated days", "-seed", "-memory", "-fixed", "-json"}},
		{[]string{"export"}, []string{"usage: nimbus export", "-executions", "-output", "-store", "-data-dir", "-env-file"}},
		{[]string{"import"}, []string{"usage: nimbus import", "-skip-existing", "-store"}},
		{[]string{"migrate"}, []string{"usage: nimbus migrate", "-from", "the store to copy from", "-to", "-executions", "-skip-existing"}},
		{[]string{"images"}, []string{"usage: nimbus images build"}},
		{[]string{"images", "build"}, []string{"usage: nimbus images build", "-runtime", "build only this runtime", "-force"}},
		{[]string{"microvm"}, []string{"nimbus microvm build"}},
		{[]string{"microvm", "build"}, []string{"nimbus microvm build", "-dir", "artifacts directory", "-data-dir"}},
		{[]string{"version"}, []string{"usage: nimbus version"}},
		{nil, []string{"usage:", "nimbus serve", "nimbus version"}},
	} {
		for _, help := range []string{"--help", "-h"} {
			args := append(append([]string{}, tc.args...), help)
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				out, errOut, code := nimbus(t, args...)
				if code != 0 {
					t.Errorf("exit status %d, want 0\nstdout: %s\nstderr: %s", code, out, errOut)
				}
				if strings.Contains(out+errOut, "help requested") {
					t.Errorf("output says %q:\n%s%s", "help requested", out, errOut)
				}
				for _, w := range tc.want {
					if !strings.Contains(out, w) {
						t.Errorf("standard output lacks %q:\n%s\nstderr: %s", w, out, errOut)
					}
				}
			})
		}
	}
}

// A bad flag is still an error, reported on standard error.
func TestBadFlagFails(t *testing.T) {
	for _, args := range [][]string{{"serve", "--no-such-flag"}, {"bench", "--no-such-flag"}, {"version", "extra"}} {
		_, errOut, code := nimbus(t, args...)
		if code == 0 || errOut == "" {
			t.Errorf("nimbus %v: exit status %d, stderr %q: want a failure explained", args, code, errOut)
		}
	}
}

func TestVersion(t *testing.T) {
	build := func(main string, settings ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{Main: debug.Module{Path: "github.com/nimbusfaas/nimbus", Version: main}}
		for i := 0; i+1 < len(settings); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return bi
	}
	const rev = "6c1e5fb971f4766550385d62d16a579ac51cc247"
	for _, tc := range []struct {
		name   string
		linked string
		bi     *debug.BuildInfo
		want   string
	}{
		{"linked in wins", "v1.4.0", build("(devel)", "vcs.revision", rev), "v1.4.0"},
		{"commit", "", build("(devel)", "vcs.revision", rev, "vcs.modified", "false"), "6c1e5fb971f4"},
		{"dirty commit", "", build("(devel)", "vcs.revision", rev, "vcs.modified", "true"), "6c1e5fb971f4-dirty"},
		{"pseudo-version: the commit", "", build("v0.0.0-20260102030405-6c1e5fb971f4+dirty", "vcs.revision", rev, "vcs.modified", "true"), "6c1e5fb971f4-dirty"},
		{"release tag", "", build("v1.2.3", "vcs.revision", rev), "v1.2.3"},
		{"go install module@version", "", build("v1.2.3"), "v1.2.3"},
		{"no stamp", "", build("(devel)"), "dev"},
		{"no build info", "", nil, "dev"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := versionOf(tc.linked, tc.bi); got != tc.want {
				t.Errorf("version %q, want %q", got, tc.want)
			}
		})
	}
}

// The binary says which build it is; this test binary has build info but
// no VCS stamp, so the version is at least not empty.
func TestVersionCommand(t *testing.T) {
	out, errOut, code := nimbus(t, "version")
	if code != 0 || !strings.HasPrefix(out, "nimbus ") || strings.TrimSpace(strings.TrimPrefix(out, "nimbus ")) == "" {
		t.Fatalf("nimbus version: %d %q %q", code, out, errOut)
	}
}
