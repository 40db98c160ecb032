package sandbox_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
)

// TestLeftoversOfAKilledServerAreRemoved: a server killed with SIGKILL
// leaves its instances' cgroups, with whatever still runs in them, and
// their directories. The next server removes them at start-up, and leaves
// alone the cgroups of a server that still runs.
func TestLeftoversOfAKilledServerAreRemoved(t *testing.T) {
	h := newHarness(t)
	first := h.driver(t, nil)
	parents := first.CgroupParents()
	if len(parents) == 0 {
		t.Fatal("no cgroups")
	}
	// A server that is gone: a process that ran and exited.
	gone := exec.Command("sleep", "0.1")
	if err := gone.Start(); err != nil {
		t.Fatal(err)
	}
	goneTag := strconv.Itoa(gone.Process.Pid) + "." + driver.ProcStart(gone.Process.Pid)
	gone.Wait()
	// A server that still runs.
	alive := exec.Command("sleep", "600")
	if err := alive.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { alive.Process.Kill(); alive.Wait() }()
	aliveTag := strconv.Itoa(alive.Process.Pid) + "." + driver.ProcStart(alive.Process.Pid)

	// What each left: a cgroup with a process in it.
	leave := func(name string) *exec.Cmd {
		t.Helper()
		p := exec.Command("sleep", "600")
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Process.Kill() })
		for _, parent := range parents {
			d := filepath.Join(parent, name)
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(p.Process.Pid)), 0); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	orphan := leave(goneTag + "-orphan0000000000000000")
	kept := leave(aliveTag + "-kept00000000000000000000")
	orphanDone, keptDone := make(chan struct{}), make(chan struct{})
	go func() { orphan.Wait(); close(orphanDone) }()
	go func() { kept.Wait(); close(keptDone) }()

	h.driver(t, nil) // the next server starts

	select {
	case <-orphanDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the killed server's worker still runs")
	}
	for _, parent := range parents {
		if _, err := os.Stat(filepath.Join(parent, goneTag+"-orphan0000000000000000")); !os.IsNotExist(err) {
			t.Errorf("the killed server's cgroup is still in %s: %v", parent, err)
		}
		if _, err := os.Stat(filepath.Join(parent, aliveTag+"-kept00000000000000000000")); err != nil {
			t.Errorf("a running server's cgroup was removed from %s: %v", parent, err)
		}
	}
	select {
	case <-keptDone:
		t.Error("a running server's worker was killed")
	default:
	}
	// Tidy the running server's leftovers by hand.
	kept.Process.Kill()
	<-keptDone
	for _, parent := range parents {
		os.Remove(filepath.Join(parent, aliveTag+"-kept00000000000000000000"))
	}
}
