package sandbox

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
)

// freeze freezes every process in the cgroup (the v1 freezer, or v2's
// cgroup.freeze) and waits until they are: a frozen process runs nothing,
// not even a thread its handler left spinning, until thawed.
func (g *cgroup) freeze() error {
	file, value, done, err := g.freezer(true)
	if err != nil {
		return err
	}
	if err := os.WriteFile(file, []byte(value), 0); err != nil {
		return fmt.Errorf("freeze: %w", err)
	}
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(time.Millisecond) {
		if done() {
			return nil
		}
		if time.Now().After(deadline) {
			g.thaw()
			return fmt.Errorf("freeze: %s did not settle in 2 s", filepath.Dir(file))
		}
	}
}

// thaw lets the cgroup's processes run again.
func (g *cgroup) thaw() error {
	file, value, _, err := g.freezer(false)
	if err != nil {
		return err
	}
	if err := os.WriteFile(file, []byte(value), 0); err != nil {
		return fmt.Errorf("thaw: %w", err)
	}
	return nil
}

// freezer is the file that freezes the cgroup, what to write to it to
// freeze (or thaw) it, and a test that the freeze has settled.
func (g *cgroup) freezer(freeze bool) (file, value string, done func() bool, err error) {
	if g.c.version == 2 {
		dir := g.dirs[0]
		value = "0"
		if freeze {
			value = "1"
		}
		return filepath.Join(dir, "cgroup.freeze"), value, func() bool {
			b, _ := os.ReadFile(filepath.Join(dir, "cgroup.events"))
			return bytes.Contains(b, []byte("frozen 1"))
		}, nil
	}
	dir, ok := g.dir("freezer")
	if !ok {
		return "", "", nil, fmt.Errorf("no freezer hierarchy: %w", driver.ErrNotSupported)
	}
	value = "THAWED"
	if freeze {
		value = "FROZEN"
	}
	state := filepath.Join(dir, "freezer.state")
	return state, value, func() bool {
		b, _ := os.ReadFile(state)
		return string(bytes.TrimSpace(b)) == "FROZEN"
	}, nil
}
