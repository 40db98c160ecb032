package driver

import (
	"os"
	"strconv"
	"strings"
)

// ResidentKiB is the resident memory of process pid (VmRSS), or 0 when
// it cannot be read.
func ResidentKiB(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	_, v, ok := strings.Cut(string(b), "\nVmRSS:")
	if !ok {
		return 0
	}
	v, _, _ = strings.Cut(v, "\n")
	n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
	return n
}

// ChildPIDs lists the children of process pid's main thread, oldest
// first, or nil when they cannot be read.
func ChildPIDs(pid int) []int {
	p := strconv.Itoa(pid)
	b, err := os.ReadFile("/proc/" + p + "/task/" + p + "/children")
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}
