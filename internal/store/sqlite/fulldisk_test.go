package sqlite_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/testenv"
)

// TestFullDisk: on a file system with no room left, writing records fails
// with fn.ErrUnavailable (so the engine keeps them and tries again) and
// an error that says why; what is stored can still be read; once there is
// room again, writes work.
func TestFullDisk(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=3m"); err != nil {
		testenv.Require(t, "a tmpfs mount", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	s := openClosing(t, filepath.Join(dir, "nimbus.db"))
	ctx := t.Context()
	f := &fn.Function{ID: fn.NewID(), Name: "full", Runtime: runtime.Python, Handler: "main.handler",
		Files: map[string]string{"main.py": "x = 1\n"}, Revision: 1, CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := s.CreateFunction(ctx, f); err != nil {
		t.Fatal(err)
	}
	// Fill what is left with a file of our own, to free it later.
	filler := filepath.Join(dir, "filler")
	fill, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := fill.Write(make([]byte, 64<<10)); err != nil {
			break
		}
	}
	fill.Close()

	event := json.RawMessage(`"` + strings.Repeat("e", 200<<10) + `"`)
	var werr error
	for i := 0; i < 50 && werr == nil; i++ {
		werr = s.InsertExecutions(ctx, []*fn.Execution{{ID: fn.NewID(), FunctionID: f.ID, Version: 1,
			Status: fn.StatusSuccess, Event: event, StartedAt: time.Now()}})
	}
	if !errors.Is(werr, fn.ErrUnavailable) || !strings.Contains(strings.ToLower(werr.Error()), "full") {
		t.Fatalf("writing to a full disk: %v, want fn.ErrUnavailable saying the disk is full", werr)
	}
	if got, err := s.GetFunction(ctx, f.ID); err != nil || got.Name != "full" {
		t.Fatalf("reading from a full disk: %v %v", got, err)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertExecutions(ctx, []*fn.Execution{{ID: fn.NewID(), FunctionID: f.ID, Version: 1,
		Status: fn.StatusSuccess, StartedAt: time.Now()}}); err != nil {
		t.Fatalf("writing once there is room again: %v", err)
	}
}
