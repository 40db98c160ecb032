package driver

import (
	"os"
	"strconv"
	"strings"
)

// ProcStart is the start time of process pid in clock ticks since boot
// (field 22 of /proc/pid/stat), or "" when there is no such process: with
// the pid, it names a process for as long as the host runs, where a pid
// alone may be reused.
func ProcStart(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s)
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

// ProcessTag names this process as "<pid>.<start time>", for what it
// leaves on the host (cgroups, files) so that a later server can tell
// whether its owner still runs (TagGone).
func ProcessTag() string {
	pid := os.Getpid()
	return strconv.Itoa(pid) + "." + ProcStart(pid)
}

// TagGone reports whether tag (from ProcessTag) names a process of this
// boot that no longer runs. A string that is no tag is not gone.
func TagGone(tag string) bool {
	p, start, ok := strings.Cut(tag, ".")
	pid, err := strconv.Atoi(p)
	if !ok || err != nil || pid <= 0 || start == "" {
		return false
	}
	return ProcStart(pid) != start
}
