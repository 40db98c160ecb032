package docker

import "testing"

func TestOOMRecord(t *testing.T) {
	const id = "3f4e5d6c7b8a90123456789abcdef0123456789abcdef0123456789abcdef01"
	for _, c := range []struct {
		rec  string
		pid  int
		want bool
	}{
		{"6,1234,5678,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=" + id + ",oom_memcg=/docker/" + id + ",task_memcg=/docker/" + id + ",task=python3,pid=4321,uid=65534\n", 0, true},
		{"6,1234,5678,-;oom-kill:constraint=CONSTRAINT_MEMCG,oom_memcg=/docker/other,task=python3,pid=4321\n", 0, false},
		{"3,1235,5679,-;Memory cgroup out of memory: Killed process 4321 (python3) total-vm:1kB\n", 4321, true},
		{"3,1235,5000,-;Memory cgroup out of memory: Killed process 4321 (python3) total-vm:1kB\n", 4321, false}, // before the shim had the pid
		{"3,1235,5679,-;Memory cgroup out of memory: Killed process 43210 (python3) total-vm:1kB\n", 4321, false},
		{"3,1235,5679,-;Memory cgroup out of memory: Killed process 4321 (python3) total-vm:1kB\n", 0, false},
		{"6,1,2,-;some " + id + " mention\n", 0, false},
		{"no separator " + id, 0, false},
	} {
		var killed []byte
		if c.pid > 0 {
			killed = []byte("out of memory: Killed process " + itoa(c.pid) + " (")
		}
		if got := oomRecord([]byte(c.rec), []byte(id), killed, 5500); got != c.want {
			t.Errorf("oomRecord(%q, pid %d) = %v, want %v", c.rec, c.pid, got, c.want)
		}
	}
}

func itoa(n int) string {
	s := ""
	for ; n > 0; n /= 10 {
		s = string(rune('0'+n%10)) + s
	}
	return s
}
