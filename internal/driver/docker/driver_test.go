package docker_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/driver/docker"
	"github.com/nimbusfaas/nimbus/internal/driver/drivertest"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

var noPool = map[string]string{docker.EnvPool: "0"}

func inspect(t *testing.T, name string) client.ContainerInspectResult {
	t.Helper()
	r, err := cli.ContainerInspect(context.Background(), name, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatalf("inspect %s: %v", name, err)
	}
	return r
}

func serverID(t *testing.T, dataDir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "docker", "server-id"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// containers lists the containers with all the labels given.
func containers(t *testing.T, labels ...string) []string {
	t.Helper()
	f := make(client.Filters)
	for _, l := range labels {
		f.Add("label", l)
	}
	res, err := cli.ContainerList(context.Background(), client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range res.Items {
		ids = append(ids, c.ID)
	}
	return ids
}

func eventually(t *testing.T, within time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("not so after %s: %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const echoPy = "def handler(event, context):\n    return event\n"

// TestContainerSettings checks the labels and limits of a container started
// for a function.
func TestContainerSettings(t *testing.T) {
	dataDir := t.TempDir()
	requireDocker(t)
	d := openDriver(t, dataDir, noPool)
	f := drivertest.Function(t, runtime.Python, drivertest.Source(runtime.Python, echoPy))
	f.Memory = 200
	in := drivertest.Start(t, d, f)
	c := inspect(t, in.Stats().ID).Container
	for k, v := range map[string]string{
		"io.nimbus.managed":  "true",
		"io.nimbus.server":   serverID(t, dataDir),
		"io.nimbus.function": f.ID,
		"io.nimbus.runtime":  "python",
		"io.nimbus.memory":   "200",
	} {
		if got := c.Config.Labels[k]; got != v {
			t.Errorf("label %s=%q, want %q", k, got, v)
		}
	}
	if !strings.HasSuffix(c.Name, c.Config.Labels["io.nimbus.instance"]) {
		t.Errorf("name %q does not end with the instance id %q", c.Name, c.Config.Labels["io.nimbus.instance"])
	}
	s := in.Stats()
	if s.PID <= 0 || s.RSSKiB <= 0 {
		t.Errorf("stats %+v: want the shim's pid and memory", s)
	} else if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", s.PID)); err != nil || !strings.Contains(string(b), "bootstrap.py") {
		t.Errorf("pid %d is not the shim: %q", s.PID, b)
	}
	h := c.HostConfig
	if h.Memory != 200<<20 || h.MemorySwap != 200<<20 {
		t.Errorf("memory %d swap %d, want both %d", h.Memory, h.MemorySwap, 200<<20)
	}
	if h.NanoCPUs != 1e9 || h.CPUShares != 200*1024/1769 || h.PidsLimit == nil || *h.PidsLimit != 64 {
		t.Errorf("cpus %d shares %d pids %v", h.NanoCPUs, h.CPUShares, h.PidsLimit)
	}
	if !h.ReadonlyRootfs || string(h.NetworkMode) != "none" || c.Config.User != "65534:65534" {
		t.Errorf("read-only %v network %q user %q", h.ReadonlyRootfs, h.NetworkMode, c.Config.User)
	}
	if len(h.CapDrop) != 1 || h.CapDrop[0] != "ALL" || len(h.SecurityOpt) != 1 || h.SecurityOpt[0] != "no-new-privileges" {
		t.Errorf("cap drop %q security opt %q", h.CapDrop, h.SecurityOpt)
	}
	if !strings.Contains(h.Tmpfs["/tmp"], "size=67108864") {
		t.Errorf("tmpfs %q", h.Tmpfs)
	}
	for _, m := range c.Mounts {
		if m.RW {
			t.Errorf("mount %s is writable", m.Destination)
		}
	}
}

// TestNetwork checks that a function that asks for the network gets an
// interface beyond loopback (no traffic is sent).
func TestNetwork(t *testing.T) {
	d := newDriver(t, noPool)
	f := drivertest.Function(t, runtime.Python, drivertest.Source(runtime.Python, `
import socket
def handler(event, context):
    return [n for _, n in socket.if_nameindex()]
`))
	f.Network = true
	in := drivertest.Start(t, d, f)
	got := drivertest.MustInvoke[[]string](t, in, nil)
	if len(got) < 2 {
		t.Errorf("interfaces %q: want one beyond lo", got)
	}
	if mode := inspect(t, in.Stats().ID).Container.HostConfig.NetworkMode; mode == "none" {
		t.Errorf("network mode %q", mode)
	}
}

// TestPool checks that a function's first instance comes from the pool,
// which then refills.
func TestPool(t *testing.T) {
	dataDir := t.TempDir()
	requireDocker(t)
	d := openDriver(t, dataDir, map[string]string{docker.EnvPool: "1"})
	server := "io.nimbus.server=" + serverID(t, dataDir)
	pooled := func() []string { return containers(t, server, "io.nimbus.pool=true") }
	if err := d.Available(context.Background()); err != nil {
		t.Fatal(err)
	}
	d.Warm()
	eventually(t, time.Minute, "a python and a node container pooled", func() bool { return len(pooled()) == 2 })
	before := pooled()
	f := drivertest.Function(t, runtime.Python, drivertest.Source(runtime.Python, echoPy))
	in := drivertest.Start(t, d, f)
	if got := drivertest.MustInvoke[string](t, in, "hi"); got != "hi" {
		t.Fatalf("got %q", got)
	}
	id := inspect(t, in.Stats().ID).Container.ID
	found := false
	for _, p := range before {
		found = found || p == id
	}
	if !found {
		t.Errorf("the instance's container %s was not one of the pooled %q", id, before)
	}
	eventually(t, time.Minute, "the pool refilled", func() bool { return len(pooled()) == 3 })
}

// TestLeftovers checks that a driver opened on the data dir of a server
// that did not close removes that server's containers.
func TestLeftovers(t *testing.T) {
	dataDir := t.TempDir()
	requireDocker(t)
	crashed := openDriver(t, dataDir, noPool)
	in := drivertest.Start(t, crashed, drivertest.Function(t, runtime.Python, drivertest.Source(runtime.Python, echoPy)))
	name := in.Stats().ID
	inspect(t, name)
	openDriver(t, dataDir, noPool) // the next run of the same server
	if _, err := cli.ContainerInspect(context.Background(), name, client.ContainerInspectOptions{}); err == nil {
		t.Errorf("container %s of the earlier run is still there", name)
	}
	drivertest.WaitDone(t, in, 30*time.Second)
}

// TestClose checks that closing the driver removes every container it
// started, pooled or not.
func TestClose(t *testing.T) {
	dataDir := t.TempDir()
	requireDocker(t)
	d := openDriver(t, dataDir, map[string]string{docker.EnvPool: "1"})
	server := "io.nimbus.server=" + serverID(t, dataDir)
	d.Warm()
	in := drivertest.Start(t, d, drivertest.Function(t, runtime.NodeJS, drivertest.Source(runtime.NodeJS, "exports.handler = async (e) => e;\n")))
	drivertest.MustInvoke[any](t, in, 1)
	eventually(t, time.Minute, "pool filled", func() bool { return len(containers(t, server, "io.nimbus.pool=true")) >= 2 })
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if left := containers(t, server); len(left) > 0 {
		t.Errorf("containers left after Close: %q", left)
	}
	drivertest.WaitDone(t, in, time.Second)
	if _, err := d.Start(context.Background(), driver.InstanceSpec{Function: drivertest.Function(t, runtime.Python, drivertest.Source(runtime.Python, echoPy))}); err == nil {
		t.Errorf("a closed driver started an instance")
	}
}

// TestMissingImage: an image that is neither present nor pullable makes
// Start fail as unavailable, naming the image.
func TestMissingImage(t *testing.T) {
	d := newDriver(t, map[string]string{docker.EnvPool: "0", docker.EnvImage(runtime.Python): "nimbus/no-such-image:1"})
	f := drivertest.Function(t, runtime.Python, drivertest.Source(runtime.Python, echoPy))
	_, err := d.Start(context.Background(), driver.InstanceSpec{Function: f})
	if !errors.Is(err, fn.ErrUnavailable) || !strings.Contains(err.Error(), "nimbus/no-such-image:1") {
		t.Errorf("Start: %v, want fn.ErrUnavailable naming the image", err)
	}
}

// TestOOMEvents checks that the driver hears the daemon's "oom" events for
// its containers: the state's OOMKilled alone can miss an OOM kill.
func TestOOMEvents(t *testing.T) {
	d := newDriver(t, noPool)
	f := drivertest.Function(t, runtime.Python, drivertest.Source(runtime.Python, `
def handler(event, context):
    chunks = []
    while True:
        chunks.append(b"x" * (4 << 20))
`))
	f.Memory = 64
	in := drivertest.Start(t, d, f)
	_, err := drivertest.Invoke(in, nil, 30*time.Second)
	var ee *driver.ExitError
	if !errors.As(err, &ee) || !ee.Exit.OOM {
		t.Fatalf("invoke: %v, want an OOM exit", err)
	}
	eventually(t, 10*time.Second, "an oom event", func() bool { return d.OOMEvents() > 0 })
}
