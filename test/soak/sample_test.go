package soak_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
)

// quantities are what the soak samples, in the order of the report.
var quantities = []string{"rss_mib", "heap_mib", "goroutines", "fds", "threads", "children", "cgroups"}

// sample is one reading of what the server holds.
type sample struct {
	at     time.Duration // since the load started
	values map[string]float64
}

// sampler reads a server's figures from /proc, its cgroups and /metrics.
type sampler struct {
	n *nimbus
	// cgroupParent is the directory holding the instances' cgroups (memory
	// hierarchy on v1, the unified one on v2), or "" when there is none.
	cgroupParent string
	// foreign are cgroups that were in the parent before the server
	// started: another server's on a shared host, not this one's.
	foreign map[string]bool
}

func (s *sampler) take(at time.Duration) (sample, error) {
	pid := s.n.pid()
	out := sample{at: at, values: map[string]float64{}}
	status, err := procStatus(pid)
	if err != nil {
		return out, err
	}
	out.values["rss_mib"] = float64(status["VmRSS"]) / 1024 // kB
	out.values["threads"] = float64(status["Threads"])
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return out, err
	}
	out.values["fds"] = float64(len(fds))
	out.values["children"] = float64(descendants(pid))
	out.values["cgroups"] = float64(s.cgroups())
	m, err := s.n.metrics("go_memstats_heap_inuse_bytes", "go_goroutines")
	if err != nil {
		return out, err
	}
	out.values["heap_mib"] = m["go_memstats_heap_inuse_bytes"] / (1 << 20)
	out.values["goroutines"] = m["go_goroutines"]
	return out, nil
}

// procStatus reads the numeric fields of /proc/PID/status (VmRSS in kB).
func procStatus(pid int) (map[string]int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		if n, err := strconv.ParseInt(fields[0], 10, 64); err == nil {
			out[k] = n
		}
	}
	return out, sc.Err()
}

// descendants counts the processes below pid: workers, helpers, zygotes.
func descendants(pid int) int {
	parent := map[int]int{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(d + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		p, _ := strconv.Atoi(filepath.Base(d))
		pp, _ := strconv.Atoi(f[1])
		parent[p] = pp
	}
	n := 0
	for p := range parent {
		for q, hops := parent[p], 0; q > 1 && hops < 64; q, hops = parent[q], hops+1 {
			if q == pid {
				n++
				break
			}
		}
	}
	return n
}

// cgroups counts the instance cgroups of this server.
func (s *sampler) cgroups() int {
	if s.cgroupParent == "" {
		return 0
	}
	entries, err := os.ReadDir(s.cgroupParent)
	if err != nil {
		return 0
	}
	// The sandbox names its cgroups <server pid>.<its start time>-<instance>:
	// those of another server on the host (another soak, a test) are not
	// this one's.
	pid := s.n.pid()
	mine := strconv.Itoa(pid) + "." + driver.ProcStart(pid) + "-"
	n := 0
	for _, e := range entries {
		if e.IsDir() && !s.foreign[e.Name()] && strings.HasPrefix(e.Name(), mine) {
			n++
		}
	}
	return n
}

// findCgroupParent finds where the sandbox driver of a server in this
// process's cgroup makes its instances' cgroups: a "nimbus" directory below
// the server's cgroup in the memory hierarchy (v1) or the unified one (v2),
// where the server may have moved itself to a "nimbus-server" leaf beside
// it. See internal/driver/sandbox/cgroup_linux.go.
func findCgroupParent(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return ""
	}
	var candidates []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var root string
		switch {
		case parts[0] == "0" && parts[1] == "":
			root = "/sys/fs/cgroup" // v2; on hybrid hosts also /sys/fs/cgroup/unified
			candidates = append(candidates,
				filepath.Join("/sys/fs/cgroup/unified", parts[2]),
				filepath.Join("/sys/fs/cgroup/unified", filepath.Dir(parts[2])))
		case hasController(parts[1], "memory"):
			root = "/sys/fs/cgroup/memory"
		default:
			continue
		}
		candidates = append(candidates, filepath.Join(root, parts[2]), filepath.Join(root, filepath.Dir(parts[2])))
	}
	// The driver uses the unified hierarchy when it can delegate the memory
	// controller there (hybrid hosts may have an unused "nimbus" in it),
	// else the v1 memory hierarchy.
	for _, c := range candidates {
		ctl, err := os.ReadFile(filepath.Join(c, "nimbus", "cgroup.subtree_control"))
		if err == nil && hasController(strings.ReplaceAll(strings.TrimSpace(string(ctl)), " ", ","), "memory") {
			return filepath.Join(c, "nimbus")
		}
	}
	for _, c := range candidates {
		if strings.HasPrefix(c, "/sys/fs/cgroup/memory/") || c == "/sys/fs/cgroup/memory" {
			if fi, err := os.Stat(filepath.Join(c, "nimbus")); err == nil && fi.IsDir() {
				return filepath.Join(c, "nimbus")
			}
		}
	}
	return ""
}

func hasController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

// existingCgroups lists the cgroups already in the parent the server will
// use, before it starts.
func existingCgroups() map[string]bool {
	out := map[string]bool{}
	parent := findCgroupParent(os.Getpid())
	if parent == "" {
		return out
	}
	entries, _ := os.ReadDir(parent)
	for _, e := range entries {
		if e.IsDir() {
			out[e.Name()] = true
		}
	}
	return out
}
