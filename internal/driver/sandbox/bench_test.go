package sandbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/driver/drivertest"
	"github.com/nimbusfaas/nimbus/internal/driver/sandbox"
)

// BenchmarkStart measures a cold start (Start and a first Invoke) with and
// without isolation:
//
//	go test -run '^$' -bench Start -benchtime 40x ./internal/driver/sandbox/
//
// The difference between the isolated and plain runs of a runtime is what
// the sandbox adds to a worker's start.
func BenchmarkStart(b *testing.B) {
	h := newHarness(b)
	for _, mode := range []string{"plain", "isolated"} {
		lookup := map[string]string{}
		if mode == "plain" {
			lookup[sandbox.EnvIsolation] = "off"
		}
		d := h.driver(b, lookup)
		for _, rt := range []string{"python", "nodejs"} {
			f := h.function(rt, "noop", okCode[rt])
			// A full CPU's weight, as the server's own: under contention a
			// smaller function would start slower by design, not by set-up.
			f.Memory = 1769
			b.Run(rt+"/"+mode, func(b *testing.B) {
				for range b.N {
					inst, err := d.Start(context.Background(), driver.InstanceSpec{Function: f})
					if err != nil {
						b.Fatal(err)
					}
					_, err = inst.Invoke(context.Background(), driver.NewRequest("r", json.RawMessage(`{}`), time.Now().Add(5*time.Second).UnixMilli()))
					if err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					inst.Kill("done")
					<-inst.Done()
					b.StartTimer()
				}
			})
		}
	}
}

// BenchmarkSetup measures what the sandbox adds to a cold start's critical
// path, with a spare sandbox (whose helper has built and locked down its
// sandbox ahead): the cgroup's limits, the message saying what to run, the helper
// becoming the sandbox user and exec'ing its init shell, which runs
// /bin/true and reports its exit. ms-plain is the same /bin/true run as a
// plain child of the server, as without isolation; the difference is the
// overhead.
//
//	go test -run '^$' -bench Setup -benchtime 200x -count 3 ./internal/driver/sandbox/
func BenchmarkSetup(b *testing.B) {
	h := newHarness(b)
	d := h.driver(b, nil)
	times := make([]time.Duration, 0, b.N)
	plain := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	b.StopTimer()
	for range b.N {
		took, err := d.SetupOnce(1769) // a full CPU's weight, as BenchmarkStart
		if err != nil {
			b.Fatal(err)
		}
		times = append(times, took)
		t0 := time.Now()
		if err := exec.Command("/bin/true").Run(); err != nil {
			b.Fatal(err)
		}
		plain = append(plain, time.Since(t0))
	}
	// The median and 90th percentile say more than the mean on a machine
	// shared with other work.
	slices.Sort(times)
	slices.Sort(plain)
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "ms-median")
	b.ReportMetric(float64(times[len(times)*9/10].Microseconds())/1000, "ms-p90")
	b.ReportMetric(float64(plain[len(plain)/2].Microseconds())/1000, "ms-plain-median")
}

// BenchmarkAssign measures what a function's code costs a cold start: a
// sandbox built ahead is assigned to a function whose code is a directory
// mounted into it (the shared code directory the engine supplies), or
// whose files are written into it (specs built by hand), or hard-linked
// into it (a server that cannot mount: in a user namespace). One small
// file, and a thousand files of 1 KiB in a hundred directories (a modest
// node_modules):
//
//	go test -run '^$' -bench Assign -benchtime 200x ./internal/driver/sandbox/
func BenchmarkAssign(b *testing.B) {
	h := newHarness(b)
	d := h.driver(b, nil)
	for _, n := range []int{1, 1000} {
		files := map[string]string{"main.py": okCode["python"]}
		for i := 1; i < n; i++ {
			files[fmt.Sprintf("pkg%02d/mod%03d.py", i%100, i)] = strings.Repeat("#", 1024)
		}
		tree := map[string]drivertest.File{}
		for p, c := range files {
			tree[p] = drivertest.File{Data: []byte(c)}
		}
		code := drivertest.Dir(b, tree)
		f := h.function("python", "assign", okCode["python"])
		for _, how := range []string{"mount", "write", "link"} {
			b.Run(fmt.Sprintf("%s/%d-files", how, n), func(b *testing.B) {
				spec := driver.InstanceSpec{Function: f, Code: code}
				if how == "write" {
					g := *f
					g.Files = files
					spec = driver.InstanceSpec{Function: &g}
				}
				times := make([]time.Duration, 0, b.N)
				for range b.N {
					var took time.Duration
					var err error
					if how == "link" {
						dst := filepath.Join(b.TempDir(), "task")
						t0 := time.Now()
						err = driver.LinkTree(code, dst)
						took = time.Since(t0)
					} else {
						took, err = d.AssignOnce(spec)
					}
					if err != nil {
						b.Fatal(err)
					}
					times = append(times, took)
				}
				slices.Sort(times)
				b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "ms-median")
				b.ReportMetric(float64(times[len(times)*9/10].Microseconds())/1000, "ms-p90")
			})
		}
	}
}
