package docker_test

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/nimbusfaas/nimbus/internal/driver/docker"
	"github.com/nimbusfaas/nimbus/internal/driver/drivertest"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// restartDockerd stops the daemon (SIGTERM, as a service manager would)
// and starts it again as scripts/docker.sh does, waiting until it answers.
// It restarts it when the test ends too, whatever happened.
func restartDockerd(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile("/var/run/docker.pid")
	if err != nil {
		t.Fatalf("dockerd's pid: %v (this test restarts the dockerd that make docker starts)", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	answers := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := cli.Ping(ctx, client.PingOptions{})
		return err == nil
	}
	start := func() {
		cmd := exec.Command("bash", "-c", "setsid nohup dockerd >>/var/log/nimbus-dockerd.log 2>&1 </dev/null &")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("start dockerd: %v %s", err, out)
		}
		eventually(t, 2*time.Minute, "dockerd answers again", answers)
	}
	t.Cleanup(func() {
		if !answers() {
			start()
		}
	})
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "dockerd stopped", func() bool { return syscall.Kill(pid, 0) != nil })
	start()
}

// TestDockerdRestartedUnderAWarmPool: the daemon restarts while the driver
// holds a warm instance and pooled containers. The instance ends (its
// container went with the daemon) instead of hanging, the driver starts
// new instances once the daemon is back, and closing it leaves no
// container of its own.
func TestDockerdRestartedUnderAWarmPool(t *testing.T) {
	dataDir := t.TempDir()
	requireDocker(t)
	d := openDriver(t, dataDir, map[string]string{docker.EnvPool: "1"})
	server := "io.nimbus.server=" + serverID(t, dataDir)
	d.Warm()
	eventually(t, time.Minute, "containers pooled", func() bool { return len(containers(t, server, "io.nimbus.pool=true")) == 2 })
	f := drivertest.Function(t, runtime.Python, drivertest.Source(runtime.Python, echoPy))
	in := drivertest.Start(t, d, f)
	if got := drivertest.MustInvoke[string](t, in, "before"); got != "before" {
		t.Fatalf("got %q", got)
	}

	restartDockerd(t)

	// The warm instance's container stopped with the daemon: a call on it
	// fails at once rather than at its deadline, and the instance ends.
	if _, err := drivertest.Invoke(in, "during", 30*time.Second); err == nil {
		t.Log("the instance survived the restart (live-restore?)")
	} else {
		drivertest.WaitDone(t, in, 2*time.Minute)
		t.Logf("the warm instance ended: %v (%s)", err, in.Exit())
	}
	in2 := drivertest.Start(t, d, f)
	if got := drivertest.MustInvoke[string](t, in2, "after"); got != "after" {
		t.Fatalf("after the restart: got %q", got)
	}
	in2.Kill("test over")
	drivertest.WaitDone(t, in2, time.Minute)
	if err := d.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	eventually(t, time.Minute, "no container of this driver left", func() bool { return len(containers(t, server)) == 0 })
}
