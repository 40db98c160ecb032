package metrics_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/metrics"
	"github.com/nimbusfaas/nimbus/internal/testenv"
)

func writeProc(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestHostFromProc(t *testing.T) {
	dir := t.TempDir()
	stat := func(user, system, idle, iowait int) string {
		// user nice system idle iowait irq softirq steal guest guest_nice
		return "cpu  " + strconv.Itoa(user) + " 0 " + strconv.Itoa(system) + " " + strconv.Itoa(idle) + " " + strconv.Itoa(iowait) + " 0 0 0 7 0\ncpu0 1 2 3 4\n"
	}
	writeProc(t, dir, map[string]string{
		"stat":        stat(1000, 500, 8000, 500),
		"meminfo":     "MemTotal:        8000000 kB\nMemFree:  100 kB\nMemAvailable:    6000000 kB\n",
		"loadavg":     "0.50 1.25 2.00 3/456 7890\n",
		"self/status": "Name:\tnimbus\nVmRSS:\t   51200 kB\n",
	})
	c := &clock{t: t0}
	h := metrics.NewHost(dir)
	h.SetClock(c.now)

	// 2 s later the machine did 300 busy and 100 idle ticks: 75% busy.
	c.set(t0.Add(2 * time.Second))
	writeProc(t, dir, map[string]string{"stat": stat(1200, 600, 8050, 550)})
	st, err := h.Sample()
	if err != nil {
		t.Fatalf("Sample: %v", err)
	}
	if st.CPU.UsedPercent != 75 || st.CPU.IntervalSeconds != 2 || st.CPU.Cores < 1 {
		t.Errorf("cpu %+v, want 75%% over 2 s", st.CPU)
	}
	if st.Memory != (metrics.MemoryStats{TotalBytes: 8000000 * 1024, AvailableBytes: 6000000 * 1024, UsedBytes: 2000000 * 1024, UsedPercent: 25}) {
		t.Errorf("memory %+v", st.Memory)
	}
	if st.Load != (metrics.LoadAverage{M1: 0.5, M5: 1.25, M15: 2}) {
		t.Errorf("load %+v", st.Load)
	}
	if st.Process.RSSBytes != 51200*1024 || st.Process.Goroutines < 1 || st.Process.CPUSeconds <= 0 {
		t.Errorf("process %+v", st.Process)
	}

	// Within a second of the last reading the figures are repeated.
	c.set(t0.Add(2500 * time.Millisecond))
	writeProc(t, dir, map[string]string{"stat": stat(1200, 600, 9050, 550)})
	if again, _ := h.Sample(); again.CPU != st.CPU {
		t.Errorf("half a second later: %+v, want %+v", again.CPU, st.CPU)
	}
	// Then they cover the time since: 0 busy of 1000 ticks.
	c.set(t0.Add(3 * time.Second))
	if later, _ := h.Sample(); later.CPU.UsedPercent != 0 || later.CPU.IntervalSeconds != 1 {
		t.Errorf("a second later: %+v, want 0%% over 1 s", later.CPU)
	}
}

func TestHostMissingFiles(t *testing.T) {
	h := metrics.NewHost(t.TempDir())
	st, err := h.Sample()
	if err == nil {
		t.Error("Sample of an empty proc dir reported no error")
	}
	if st.Process.Goroutines < 1 {
		t.Errorf("what can be known is still reported: %+v", st.Process)
	}
}

func TestHostRealProc(t *testing.T) {
	_, err := os.Stat("/proc/self/status")
	testenv.Require(t, "/proc", err)
	st, err := metrics.NewHost("").Sample()
	if err != nil {
		t.Fatalf("Sample: %v", err)
	}
	if st.Memory.TotalBytes == 0 || st.Process.RSSBytes == 0 {
		t.Errorf("real /proc: %+v", st)
	}
}
