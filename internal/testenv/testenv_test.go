package testenv_test

import (
	"errors"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/testenv"
)

// fakeTB records what Require does instead of doing it.
type fakeTB struct {
	testing.TB
	skipped, failed bool
}

func (f *fakeTB) Helper()                  {}
func (f *fakeTB) Skipf(string, ...any)     { f.skipped = true }
func (f *fakeTB) Fatalf(string, ...any)    { f.failed = true }
func (f *fakeTB) Logf(string, ...any)      {}
func (f *fakeTB) Errorf(string, ...any)    { f.failed = true }
func (f *fakeTB) Skip(...any)              { f.skipped = true }
func (f *fakeTB) Fatal(...any)             { f.failed = true }
func (f *fakeTB) Name() string             { return "fake" }
func (f *fakeTB) Setenv(key, value string) {}
func (f *fakeTB) Cleanup(func())           {}
func (f *fakeTB) Failed() bool             { return f.failed }
func (f *fakeTB) Skipped() bool            { return f.skipped }
func (f *fakeTB) TempDir() string          { return "" }
func (f *fakeTB) Log(...any)               {}
func (f *fakeTB) Error(...any)             { f.failed = true }
func (f *fakeTB) SkipNow()                 { f.skipped = true }
func (f *fakeTB) FailNow()                 { f.failed = true }
func (f *fakeTB) Fail()                    { f.failed = true }

func TestRequire(t *testing.T) {
	missing := errors.New("no such thing")
	for _, tc := range []struct {
		name          string
		ci            string
		err           error
		skip, failure bool
	}{
		{"present", "1", nil, false, false},
		{"missing, not CI", "", missing, true, false},
		{"missing, CI=false", "false", missing, true, false},
		{"missing, CI", "true", missing, false, true},
		{"missing, CI=1", "1", missing, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			f := &fakeTB{}
			testenv.Require(f, "a thing", tc.err)
			if f.skipped != tc.skip || f.failed != tc.failure {
				t.Errorf("skipped %v failed %v, want %v %v", f.skipped, f.failed, tc.skip, tc.failure)
			}
		})
	}
}
