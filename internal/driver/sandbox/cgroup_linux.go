package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
)

// cgroupParent is the cgroup, below the server's own in each hierarchy,
// that holds one child per instance. Its CPU weight is one full CPU's per
// CPU of the host: against other processes, the instances together weigh
// as much as that many busy processes, and among themselves in proportion
// to their memory.
const cgroupParent = "nimbus"

// cpuShareMB is the memory that buys one full CPU's weight, as on Lambda.
const cpuShareMB = 1769

// cgroups creates, limits and removes the instances' cgroups, in the
// unified (v2) hierarchy when it has the memory, pids and cpu controllers,
// or else in the v1 hierarchies of those controllers.
type cgroups struct {
	version int               // 1 or 2
	v2      string            // v2: the parent directory
	v1      map[string]string // v1: controller → parent directory (freezer too, when mounted)
	memsw   bool              // v1: memory.memsw.* exists (swap accounting)
	pidsMax int
	// owner prefixes the names of this server's cgroups (driver.ProcessTag),
	// so that a later server can tell the leftovers of one that was killed.
	owner string
}

// cgroup is one instance's cgroup: a directory per hierarchy.
type cgroup struct {
	c    *cgroups
	dirs []string
	mem  string // the memory controller's directory, or ""
}

// controllers lists what the cgroups control, for the log and the API.
func (c *cgroups) controllers() []string {
	if c.version == 2 {
		return []string{"memory", "pids", "cpu"}
	}
	var out []string
	for _, k := range []string{"memory", "pids", "cpu"} {
		if _, ok := c.v1[k]; ok {
			out = append(out, k)
		}
	}
	return out
}

// openCgroups finds the hierarchies, creates the parent cgroup and removes
// what a crashed earlier run left in it. It returns nil and why when no
// memory controller can be used.
func openCgroups(pidsMax int) (*cgroups, error) {
	mounts, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	own, err := ownCgroups()
	if err != nil {
		return nil, err
	}
	var v2err error
	if m, ok := mounts["cgroup2"]; ok {
		c, err := openV2(m, own[""], pidsMax)
		if err == nil {
			return c, nil
		}
		v2err = err
	}
	c := &cgroups{version: 1, v1: map[string]string{}, pidsMax: pidsMax, owner: driver.ProcessTag()}
	var v1errs []error
	for _, ctl := range []string{"memory", "pids", "cpu", "freezer"} {
		m, ok := mounts[ctl]
		if !ok {
			continue
		}
		dir := filepath.Join(m.point, strings.TrimPrefix(own[ctl], m.root), cgroupParent)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			v1errs = append(v1errs, err)
			continue
		}
		if err := canCreate(dir); err != nil {
			v1errs = append(v1errs, err)
			continue
		}
		if ctl == "cpu" {
			_ = os.WriteFile(filepath.Join(dir, "cpu.shares"), []byte(strconv.Itoa(1024*goruntime.NumCPU())), 0)
		}
		c.v1[ctl] = dir
	}
	if c.v1["memory"] == "" {
		why := make([]string, 0, len(v1errs))
		for _, err := range v1errs {
			why = append(why, err.Error())
		}
		if len(why) == 0 {
			why = append(why, "no memory hierarchy")
		}
		return nil, fmt.Errorf("no usable memory controller: v1: %s; v2: %v", strings.Join(why, "; "), v2err)
	}
	_, err = os.Stat(filepath.Join(c.v1["memory"], "memory.memsw.limit_in_bytes"))
	c.memsw = err == nil
	c.removeLeftovers()
	return c, nil
}

// openV2 sets the parent up in the unified hierarchy mounted at m, where
// the server is in cgroup own.
func openV2(m mount, own string, pidsMax int) (*cgroups, error) {
	base := filepath.Join(m.point, strings.TrimPrefix(own, m.root))
	avail, err := os.ReadFile(filepath.Join(base, "cgroup.controllers"))
	if err != nil {
		return nil, err
	}
	have := strings.Fields(string(avail))
	for _, ctl := range []string{"memory", "pids", "cpu"} {
		if !slices.Contains(have, ctl) {
			return nil, fmt.Errorf("controller %s is not available in %s (it has %q)", ctl, base, have)
		}
	}
	enable := func(dir string) error {
		return os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+memory +pids +cpu"), 0)
	}
	if err := enable(base); err != nil {
		// A cgroup with processes cannot delegate controllers (the "no
		// internal processes" rule): move the server to a leaf beside the
		// instances and try again.
		leaf := filepath.Join(base, "nimbus-server")
		if err2 := os.MkdirAll(leaf, 0o755); err2 != nil {
			return nil, fmt.Errorf("enable controllers in %s: %w", base, err)
		}
		if err2 := os.WriteFile(filepath.Join(leaf, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0); err2 != nil {
			return nil, fmt.Errorf("enable controllers in %s: %w (and moving the server to %s: %v)", base, err, leaf, err2)
		}
		if err := enable(base); err != nil {
			return nil, fmt.Errorf("enable controllers in %s: %w", base, err)
		}
	}
	dir := filepath.Join(base, cgroupParent)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := enable(dir); err != nil {
		return nil, fmt.Errorf("enable controllers in %s: %w", dir, err)
	}
	if err := canCreate(dir); err != nil {
		return nil, err
	}
	_ = os.WriteFile(filepath.Join(dir, "cpu.weight"), []byte(strconv.Itoa(min(100*goruntime.NumCPU(), 10000))), 0)
	c := &cgroups{version: 2, v2: dir, pidsMax: pidsMax, owner: driver.ProcessTag()}
	c.removeLeftovers()
	return c, nil
}

// canCreate checks that this process may create cgroups below parent:
// a parent an earlier run made as root may be there and not writable.
func canCreate(parent string) error {
	probe := filepath.Join(parent, "probe-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(probe, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("cannot create cgroups in %s: %w", parent, err)
	}
	return syscall.Rmdir(probe)
}

// parents lists the parent directory of every hierarchy.
func (c *cgroups) parents() []string {
	if c.version == 2 {
		return []string{c.v2}
	}
	var out []string
	for _, d := range c.v1 {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

// removeLeftovers removes the cgroups a server that was killed left
// behind, with the processes still in them: those named for a process
// that no longer runs (driver.TagGone). Other servers on the host may
// share the parent: their cgroups stay. A cgroup named in no server's
// way (an older Nimbus's) goes when empty and older than a minute, as
// before owners were named: a young one may be being set up.
func (c *cgroups) removeLeftovers() {
	names := map[string]bool{}
	for _, parent := range c.parents() {
		entries, err := os.ReadDir(parent)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if e.IsDir() {
				names[e.Name()] = true
			}
		}
	}
	for name := range names {
		owner, _, tagged := strings.Cut(name, "-")
		g := c.named(name)
		switch {
		case tagged && driver.TagGone(owner):
			g.killAll()
			g.remove()
		case !tagged || !strings.Contains(owner, "."):
			for _, d := range g.dirs {
				if fi, err := os.Stat(d); err == nil && time.Since(fi.ModTime()) > time.Minute {
					_ = syscall.Rmdir(d)
				}
			}
		}
	}
}

// killAll thaws the cgroup and kills every process in it, waiting up to
// a few seconds for them to go.
func (g *cgroup) killAll() {
	g.thaw()
	for try := 0; try < 100; try++ {
		pids := g.procs()
		if len(pids) == 0 {
			return
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// procs lists the processes in the cgroup.
func (g *cgroup) procs() []int {
	var out []int
	for _, d := range g.dirs {
		b, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil && !slices.Contains(out, pid) {
				out = append(out, pid)
			}
		}
	}
	return out
}

// create makes the cgroup of instance id, without limits yet: a spare
// sandbox waits in it before it knows its function.
func (c *cgroups) create(id string) (*cgroup, error) {
	g := c.named(c.owner + "-" + id)
	for _, d := range g.dirs {
		if err := os.Mkdir(d, 0o755); err != nil {
			g.remove()
			return nil, fmt.Errorf("create cgroup: %w", err)
		}
	}
	return g, nil
}

// limit sets the cgroup's limits for a function of memMB megabytes: that
// much memory and no swap, the pids limit, and a CPU weight proportional to
// the memory. Writing limits is cheap; moving a process into a cgroup is
// not (on v1 it waits for an RCU grace period), which is why spare sandboxes
// are moved in ahead of time.
func (g *cgroup) limit(memMB int) error {
	c := g.c
	mem := strconv.FormatInt(int64(memMB)<<20, 10)
	var writes [][2]string
	if c.version == 2 {
		d := g.dirs[0]
		weight := min(max(memMB*100/cpuShareMB, 1), 10000)
		writes = [][2]string{
			{filepath.Join(d, "memory.max"), mem},
			{filepath.Join(d, "memory.swap.max"), "0"},
			{filepath.Join(d, "memory.oom.group"), "1"},
			{filepath.Join(d, "pids.max"), strconv.Itoa(c.pidsMax)},
			{filepath.Join(d, "cpu.weight"), strconv.Itoa(weight)},
		}
	} else {
		if d, ok := g.dir("memory"); ok {
			writes = append(writes, [2]string{filepath.Join(d, "memory.limit_in_bytes"), mem})
			if c.memsw {
				writes = append(writes, [2]string{filepath.Join(d, "memory.memsw.limit_in_bytes"), mem})
			}
		}
		if d, ok := g.dir("pids"); ok {
			writes = append(writes, [2]string{filepath.Join(d, "pids.max"), strconv.Itoa(c.pidsMax)})
		}
		if d, ok := g.dir("cpu"); ok {
			writes = append(writes, [2]string{filepath.Join(d, "cpu.shares"), strconv.Itoa(max(memMB*1024/cpuShareMB, 2))})
		}
	}
	for _, w := range writes {
		if err := os.WriteFile(w[0], []byte(w[1]), 0); err != nil {
			if c.version == 2 && errors.Is(err, fs.ErrNotExist) && strings.HasSuffix(w[0], "memory.swap.max") {
				continue // no swap accounting in this kernel
			}
			return fmt.Errorf("set %s to %s: %w", w[0], w[1], err)
		}
	}
	return nil
}

// named is the cgroup called name, in every hierarchy.
func (c *cgroups) named(name string) *cgroup {
	g := &cgroup{c: c}
	if c.version == 2 {
		g.dirs = []string{filepath.Join(c.v2, name)}
		g.mem = g.dirs[0]
		return g
	}
	for _, ctl := range []string{"memory", "pids", "cpu", "freezer"} {
		if parent, ok := c.v1[ctl]; ok {
			g.dirs = append(g.dirs, filepath.Join(parent, name))
		}
	}
	if parent, ok := c.v1["memory"]; ok {
		g.mem = filepath.Join(parent, name)
	}
	return g
}

// dir is the cgroup's directory in controller ctl's v1 hierarchy.
func (g *cgroup) dir(ctl string) (string, bool) {
	parent, ok := g.c.v1[ctl]
	if !ok {
		return "", false
	}
	for _, d := range g.dirs {
		if filepath.Dir(d) == parent {
			return d, true
		}
	}
	return "", false
}

// attach moves process pid (with its threads) into the cgroup.
func (g *cgroup) attach(pid int) error {
	p := []byte(strconv.Itoa(pid))
	for _, d := range g.dirs {
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), p, 0); err != nil {
			return fmt.Errorf("move worker into cgroup %s: %w", d, err)
		}
	}
	return nil
}

// oomKills is how many processes the kernel killed in the cgroup for
// exceeding its memory limit.
func (g *cgroup) oomKills() int64 {
	if g.mem == "" {
		return 0
	}
	name := "memory.oom_control"
	if g.c.version == 2 {
		name = "memory.events"
	}
	return readKey(filepath.Join(g.mem, name), "oom_kill")
}

// memoryKiB is the memory the cgroup uses now.
func (g *cgroup) memoryKiB() int64 {
	if g.mem == "" {
		return 0
	}
	name := "memory.usage_in_bytes"
	if g.c.version == 2 {
		name = "memory.current"
	}
	b, err := os.ReadFile(filepath.Join(g.mem, name))
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n >> 10
}

// remove deletes the cgroup once its processes are gone; the kernel may
// take a moment to release a dead one.
func (g *cgroup) remove() {
	for _, d := range g.dirs {
		for try := 0; ; try++ {
			err := syscall.Rmdir(d)
			if err == nil || errors.Is(err, fs.ErrNotExist) || try == 50 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// readKey reads the value of key in a flat-keyed cgroup file ("key value"
// lines).
func readKey(path, key string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == key {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

type mount struct{ point, root string }

// cgroupMounts finds the cgroup file systems: "cgroup2" for the unified
// hierarchy, and each v1 controller by name.
func cgroupMounts() (map[string]mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]mount{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root point options [optional...] - type source superoptions
		fields := strings.Fields(sc.Text())
		sep := slices.Index(fields, "-")
		if sep < 6 || len(fields) < sep+4 {
			continue
		}
		m := mount{root: fields[3], point: fields[4]}
		switch fields[sep+1] {
		case "cgroup2":
			if _, dup := out["cgroup2"]; !dup {
				out["cgroup2"] = m
			}
		case "cgroup":
			for _, opt := range strings.Split(fields[sep+3], ",") {
				if _, dup := out[opt]; !dup {
					out[opt] = m
				}
			}
		}
	}
	return out, sc.Err()
}

// ownCgroups reads this process's cgroup in each hierarchy: "" is the
// unified one, others by controller name.
func ownCgroups() (map[string]string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, ctl := range strings.Split(parts[1], ",") {
			out[ctl] = parts[2]
		}
	}
	return out, nil
}
