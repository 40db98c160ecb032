package docker

import (
	"bytes"
	"errors"
	"strconv"

	"golang.org/x/sys/unix"
)

// kmsgPath is the kernel's log, read by records.
var kmsgPath = "/dev/kmsg"

// kernelSawOOM reports whether the kernel's log says it killed a process
// of container id (or the process pid, when known) for exceeding a memory
// cgroup's limit. The kernel writes that as it kills, so unlike the
// daemon's "oom" event it is there by the time the exit is seen. Its log
// is a ring that rotates, and the detailed "oom-kill:" line is rate
// limited: an absent line proves nothing, and the caller falls back to
// the daemon's event. A "Killed process <pid>" record counts only from
// sinceUs (the kernel's clock, as monotonicUs reads it): the pid was the
// shim's from then on.
func kernelSawOOM(id string, pid int, sinceUs int64) bool {
	// Raw calls: an *os.File would park a read at the log's end in the
	// runtime's poller instead of returning EAGAIN.
	fd, err := unix.Open(kmsgPath, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	killed := []byte(nil)
	if pid > 0 {
		killed = []byte("out of memory: Killed process " + strconv.Itoa(pid) + " (")
	}
	buf := make([]byte, 8192) // one record per read
	for range 1 << 20 {       // bounded: the log holds far fewer records
		n, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EPIPE) || errors.Is(err, unix.EINTR) {
			continue // a record was overwritten while reading: go on
		}
		if err != nil || n <= 0 {
			return false // EAGAIN: the end of the log
		}
		if oomRecord(buf[:n], []byte(id), killed, sinceUs) {
			return true
		}
	}
	return false
}

// oomRecord reports whether a kernel log record ("prio,seq,usec,flags;
// message") tells of an OOM kill in the container id, or, from sinceUs,
// of the process whose "Killed process" prefix is killed.
func oomRecord(rec, id, killed []byte, sinceUs int64) bool {
	head, msg, ok := bytes.Cut(rec, []byte(";"))
	if !ok {
		return false
	}
	if len(id) > 0 && bytes.HasPrefix(msg, []byte("oom-kill:")) && bytes.Contains(msg, id) {
		return true
	}
	if len(killed) == 0 || !bytes.Contains(msg, killed) {
		return false
	}
	fields := bytes.Split(head, []byte(","))
	if len(fields) < 3 {
		return false
	}
	us, err := strconv.ParseInt(string(fields[2]), 10, 64)
	return err == nil && us >= sinceUs
}

// monotonicUs is the kernel's clock that its log stamps records with.
func monotonicUs() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano() / 1000
}
