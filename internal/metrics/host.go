package metrics

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Host reads the machine's and this process's resource use from /proc.
// CPU percentages compare two readings: each Sample measures from the
// previous one at least a second old (the first, from New), so the figures
// cover a stated interval rather than an instant. It is safe for
// concurrent use.
type Host struct {
	proc string // "/proc"; tests use a copy
	now  func() time.Time

	mu   sync.Mutex
	base cpuSample // the reading percentages are measured from
	last cpuFigures
}

// cpuSample is one reading of the counters CPU percentages come from.
type cpuSample struct {
	at          time.Time
	busy, total uint64        // /proc/stat "cpu" line, clock ticks
	self        time.Duration // this process's user+system CPU
}

type cpuFigures struct {
	hostPercent, selfPercent, interval float64
}

// minInterval is the shortest interval a CPU percentage is measured over.
const minInterval = time.Second

// NewHost takes a first reading from procRoot ("" for /proc).
func NewHost(procRoot string) *Host {
	if procRoot == "" {
		procRoot = "/proc"
	}
	h := &Host{proc: procRoot, now: time.Now}
	h.base, _ = h.cpu()
	return h
}

// HostStats is the machine and this process at one moment.
type HostStats struct {
	CPU     CPUUse      `json:"cpu"`
	Memory  MemoryStats `json:"memory"`
	Load    LoadAverage `json:"load"`
	Process ProcessUse  `json:"process"`
}

// CPUUse is the machine's CPU use over the last IntervalSeconds.
type CPUUse struct {
	Cores           int     `json:"cores"`
	UsedPercent     float64 `json:"usedPercent"` // of all cores
	IntervalSeconds float64 `json:"intervalSeconds"`
}

// MemoryStats is the machine's memory (/proc/meminfo).
type MemoryStats struct {
	TotalBytes     uint64  `json:"totalBytes"`
	AvailableBytes uint64  `json:"availableBytes"`
	UsedBytes      uint64  `json:"usedBytes"` // total less available
	UsedPercent    float64 `json:"usedPercent"`
}

// LoadAverage is /proc/loadavg.
type LoadAverage struct {
	M1  float64 `json:"1m"`
	M5  float64 `json:"5m"`
	M15 float64 `json:"15m"`
}

// ProcessUse is the Nimbus server process itself (not its workers).
type ProcessUse struct {
	// CPUPercent is over the same interval as the machine's; 100 is one
	// core busy.
	CPUPercent float64 `json:"cpuPercent"`
	CPUSeconds float64 `json:"cpuSeconds"` // since it started
	RSSBytes   uint64  `json:"rssBytes"`
	Goroutines int     `json:"goroutines"`
}

// Sample reads the figures now. What cannot be read stays zero and is
// reported in the error.
func (h *Host) Sample() (HostStats, error) {
	var (
		st   HostStats
		errs []error
	)
	cur, err := h.cpu()
	errs = append(errs, err)
	h.mu.Lock()
	if err == nil && cur.at.Sub(h.base.at) >= minInterval {
		d := cur.at.Sub(h.base.at).Seconds()
		h.last.interval = d
		if cur.total > h.base.total {
			h.last.hostPercent = 100 * float64(cur.busy-h.base.busy) / float64(cur.total-h.base.total)
		}
		h.last.selfPercent = 100 * (cur.self - h.base.self).Seconds() / d
		h.base = cur
	}
	st.CPU = CPUUse{Cores: goruntime.NumCPU(), UsedPercent: h.last.hostPercent, IntervalSeconds: h.last.interval}
	st.Process.CPUPercent = h.last.selfPercent
	h.mu.Unlock()
	st.Process.CPUSeconds = cur.self.Seconds()
	st.Process.Goroutines = goruntime.NumGoroutine()

	st.Memory, err = h.memory()
	errs = append(errs, err)
	st.Load, err = h.load()
	errs = append(errs, err)
	st.Process.RSSBytes, err = h.rss()
	errs = append(errs, err)
	return st, errors.Join(errs...)
}

func (h *Host) cpu() (cpuSample, error) {
	s := cpuSample{at: h.now()}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b, err := os.ReadFile(filepath.Join(h.proc, "stat"))
	if err != nil {
		return s, err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return s, fmt.Errorf("%s/stat: no cpu line", h.proc)
	}
	// user nice system idle iowait irq softirq steal (guest time is
	// already in user): idle and iowait are not busy.
	for i, v := range f[1:min(len(f), 9)] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return s, fmt.Errorf("%s/stat: %w", h.proc, err)
		}
		s.total += n
		if i != 3 && i != 4 {
			s.busy += n
		}
	}
	return s, nil
}

func (h *Host) memory() (MemoryStats, error) {
	kv, err := h.kib("meminfo", "MemTotal", "MemAvailable")
	if err != nil {
		return MemoryStats{}, err
	}
	m := MemoryStats{TotalBytes: kv["MemTotal"] * 1024, AvailableBytes: kv["MemAvailable"] * 1024}
	if m.TotalBytes > 0 && m.AvailableBytes <= m.TotalBytes {
		m.UsedBytes = m.TotalBytes - m.AvailableBytes
		m.UsedPercent = 100 * float64(m.UsedBytes) / float64(m.TotalBytes)
	}
	return m, nil
}

func (h *Host) rss() (uint64, error) {
	kv, err := h.kib("self/status", "VmRSS")
	return kv["VmRSS"] * 1024, err
}

// kib reads "Key: N kB" lines of a /proc file.
func (h *Host) kib(name string, keys ...string) (map[string]uint64, error) {
	f, err := os.Open(filepath.Join(h.proc, name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := make(map[string]uint64, len(keys))
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		for _, want := range keys {
			if k == want {
				n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				if err != nil {
					return nil, fmt.Errorf("%s/%s: %s: %w", h.proc, name, k, err)
				}
				out[k] = n
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, k := range keys {
		if _, ok := out[k]; !ok {
			return out, fmt.Errorf("%s/%s: no %s", h.proc, name, k)
		}
	}
	return out, nil
}

func (h *Host) load() (LoadAverage, error) {
	b, err := os.ReadFile(filepath.Join(h.proc, "loadavg"))
	if err != nil {
		return LoadAverage{}, err
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return LoadAverage{}, fmt.Errorf("%s/loadavg: %q", h.proc, b)
	}
	var l [3]float64
	for i := range l {
		if l[i], err = strconv.ParseFloat(f[i], 64); err != nil {
			return LoadAverage{}, fmt.Errorf("%s/loadavg: %w", h.proc, err)
		}
	}
	return LoadAverage{M1: l[0], M5: l[1], M15: l[2]}, nil
}
