package sandbox_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/driver/drivertest"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// A cold start takes a spare worker: its interpreter was running before
// Start, it gets the function's code and environment, and every protection
// holds in it as in any instance.
func TestColdStartTakesSpareWorker(t *testing.T) {
	h := newHarness(t)
	d := h.driver(t, map[string]string{"NIMBUS_SANDBOX_PRESTART": "1"})
	codes := map[string]string{
		runtime.Python: `import os
def handler(event, context):
    st = open("/proc/self/status").read()
    return {"color": os.environ.get("COLOR"), "name": os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
            "status": st, "uid": os.getuid(), "cwd": os.getcwd(), "files": sorted(os.listdir("/var/task"))}
`,
		runtime.NodeJS: `const fs = require("fs");
exports.handler = async () => ({ color: process.env.COLOR, name: process.env.AWS_LAMBDA_FUNCTION_NAME,
  status: fs.readFileSync("/proc/self/status", "utf8"), uid: process.getuid(), cwd: process.cwd(),
  files: fs.readdirSync("/var/task").sort() });
`,
	}
	for _, rt := range []string{runtime.Python, runtime.NodeJS} {
		t.Run(rt, func(t *testing.T) {
			var before []int
			deadline := time.Now().Add(30 * time.Second)
			for before = d.SpareWorkerPIDs(rt); len(before) == 0; before = d.SpareWorkerPIDs(rt) {
				if time.Now().After(deadline) {
					t.Fatal("no spare worker started in 30s")
				}
				time.Sleep(20 * time.Millisecond)
			}
			f := drivertest.Function(t, rt, drivertest.Source(rt, codes[rt]))
			f.Name = "pre-" + rt
			f.Env = map[string]string{"COLOR": "teal"}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			in, err := d.Start(ctx, driver.InstanceSpec{Function: f})
			if err != nil {
				t.Fatal(err)
			}
			defer in.Kill("test over")
			if pid := in.Stats().PID; !slices.Contains(before, pid) {
				t.Fatalf("instance pid %d was not among the spare workers' %v", pid, before)
			}
			got := drivertest.MustInvoke[struct {
				Color, Name, Status, Cwd string
				UID                      int
				Files                    []string
			}](t, in, map[string]any{})
			if got.Color != "teal" || got.Name != f.Name {
				t.Errorf("environment from Init: COLOR=%q AWS_LAMBDA_FUNCTION_NAME=%q", got.Color, got.Name)
			}
			if got.UID == 0 || !strings.Contains(got.Status, "NoNewPrivs:\t1") || !strings.Contains(got.Status, "Seccomp:\t2") ||
				!strings.Contains(got.Status, "CapEff:\t0000000000000000") {
				t.Errorf("a spare worker lacks a protection: uid %d\n%s", got.UID, got.Status)
			}
			if len(got.Files) != 1 {
				t.Errorf("/var/task holds %v, want only the function's file", got.Files)
			}
		})
	}
}
