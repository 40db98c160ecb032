// Package testenv decides, in one place, when a test may skip because the
// machine lacks something it needs (root, an interpreter, dockerd, the
// microVM artifacts, a browser): on a developer's machine it skips and says
// why; under CI it fails, so that a missing dependency can never read as a
// pass. .ci/run sets CI and refuses any skip not on its allow-list.
//
// It imports nothing of ours, and only tests import it.
package testenv

import (
	"errors"
	"os"
	"testing"
)

// CI reports whether the tests run in CI, where nothing may be missing.
func CI() bool {
	switch os.Getenv("CI") {
	case "", "0", "false":
		return false
	}
	return true
}

// Require skips t, or fails it under CI, when err says that what is
// missing. A nil err is a no-op.
func Require(tb testing.TB, what string, err error) {
	tb.Helper()
	if err == nil {
		return
	}
	if CI() {
		tb.Fatalf("needs %s: %v (CI is set: the machine must provide it)", what, err)
		return
	}
	tb.Skipf("needs %s: %v", what, err)
}

// RequireRoot is Require for tests that create namespaces and cgroups.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		Require(tb, "root", errNotRoot)
	}
}

var errNotRoot = errors.New("not running as root")
