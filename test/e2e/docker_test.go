package e2e_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/nimbusfaas/nimbus/internal/testenv"
)

var (
	dockerOnce sync.Once
	dockerErr  error
	dockerCli  *client.Client
)

// requireDocker skips a test when no Docker daemon answers, except in CI,
// where it fails. It builds the runtime images with `nimbus images build`
// once: no registry is needed.
func requireDocker(t *testing.T) {
	t.Helper()
	dockerOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if dockerCli, dockerErr = client.New(client.FromEnv); dockerErr != nil {
			return
		}
		if _, dockerErr = dockerCli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); dockerErr != nil {
			return
		}
		out, err := exec.CommandContext(ctx, binary, "images", "build").CombinedOutput()
		if err != nil {
			dockerErr = &buildError{err, string(out)}
		}
	})
	testenv.Require(t, "a usable Docker daemon (make docker starts one)", dockerErr)
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return "nimbus images build: " + e.err.Error() + "\n" + e.out }

func dockerEnv() []string {
	if h, ok := os.LookupEnv("DOCKER_HOST"); ok {
		return []string{"DOCKER_HOST=" + h}
	}
	return nil
}

// createDocker registers a docker function and fails unless it is created.
func (n *nimbus) createDocker(name, rt, code string, extra map[string]any) string {
	n.t.Helper()
	f := map[string]any{"name": name, "runtime": rt, "code": code, "driver": "docker"}
	for k, v := range extra {
		f[k] = v
	}
	var got struct {
		ID       string   `json:"id"`
		Warnings []string `json:"warnings"`
	}
	if st := n.do("POST", "/api/functions", f, &got); st != http.StatusCreated {
		n.t.Fatalf("create %s: status %d", name, st)
	}
	if len(got.Warnings) > 0 {
		n.t.Errorf("create %s: warnings %q", name, got.Warnings)
	}
	return got.ID
}

// serverContainers lists the containers of the server whose data dir is dir.
func serverContainers(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "docker", "server-id"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := dockerCli.ContainerList(context.Background(), client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", "io.nimbus.server="+strings.TrimSpace(string(b))),
	})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range res.Items {
		ids = append(ids, c.ID)
	}
	return ids
}

// TestDockerFunctions runs Python and Node functions in containers through
// a real nimbus serve: results, statuses of misbehaving handlers, and
// recovery.
func TestDockerFunctions(t *testing.T) {
	requireDocker(t)
	dir := t.TempDir()
	n := start(t, append(dockerEnv(), "NIMBUS_DATA_DIR="+dir)...)

	var sys struct {
		Drivers map[string]struct {
			Available bool   `json:"available"`
			Reason    string `json:"reason"`
		} `json:"drivers"`
	}
	n.do("GET", "/api/system", nil, &sys)
	if d := sys.Drivers["docker"]; !d.Available {
		t.Fatalf("docker driver not available: %q", d.Reason)
	}

	py := n.createDocker("docker-py", "python3.11", `
import os, time
def handler(event, context):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("exit"):
        os._exit(7)
    if event.get("eat"):
        chunks = []
        while True:
            chunks.append(b"x" * (4 << 20))
    print("hello from", os.uname().nodename)
    return {"greeting": os.environ["GREETING"] + ", " + event["name"], "uid": os.getuid()}
`, map[string]any{"env": map[string]string{"GREETING": "Hello"}, "timeout": 4000, "memory": 96})
	js := n.createDocker("docker-js", "nodejs20.x", `
exports.handler = async (event, context) => ({ sum: event.a + event.b, fn: context.functionName });
`, nil)

	ex := n.invoke(py, map[string]any{"name": "Ada"})
	var r struct {
		Greeting string `json:"greeting"`
		UID      int    `json:"uid"`
	}
	ex.decode(t, &r)
	if ex.Status != "success" || r.Greeting != "Hello, Ada" || r.UID != 65534 || !strings.Contains(ex.Logs, "hello from") {
		t.Errorf("python: status %s result %+v logs %q", ex.Status, r, ex.Logs)
	}
	ex = n.invoke(js, map[string]any{"a": 2, "b": 3})
	var s struct {
		Sum int    `json:"sum"`
		Fn  string `json:"fn"`
	}
	ex.decode(t, &s)
	if ex.Status != "success" || s.Sum != 5 || s.Fn != "docker-js" {
		t.Errorf("node: status %s result %+v", ex.Status, s)
	}

	for _, c := range []struct {
		event  map[string]any
		status string
	}{
		{map[string]any{"sleep": 8}, "timeout"},
		{map[string]any{"eat": true}, "oom"},
		{map[string]any{"exit": true}, "crashed"},
	} {
		if ex := n.invoke(py, c.event); ex.Status != c.status {
			t.Errorf("event %v: status %s (%+v), want %s", c.event, ex.Status, ex.Error, c.status)
		}
		if ex := n.invoke(py, map[string]any{"name": "again"}); ex.Status != "success" {
			t.Errorf("after %s: status %s (%+v)", c.status, ex.Status, ex.Error)
		}
	}

	if st := n.do("DELETE", "/api/functions/"+py, nil, nil); st != http.StatusNoContent {
		t.Fatalf("delete: %d", st)
	}
	// A shutdown removes every container: instances and the warm pool.
	if len(serverContainers(t, dir)) == 0 {
		t.Fatal("no containers before the shutdown")
	}
	n.stop()
	if left := serverContainers(t, dir); len(left) > 0 {
		t.Errorf("%d containers left after SIGTERM", len(left))
	}
}

// TestDockerLeftoversAfterKill9 kills a server with SIGKILL, so that it
// cannot remove its containers, and checks that its next start does.
func TestDockerLeftoversAfterKill9(t *testing.T) {
	requireDocker(t)
	dir := t.TempDir()
	env := append(dockerEnv(), "NIMBUS_DATA_DIR="+dir)
	n := start(t, env...)
	id := n.createDocker("leftover", "python", "def handler(event, context):\n    return 1\n", nil)
	if ex := n.invoke(id, nil); ex.Status != "success" {
		t.Fatalf("status %s: %+v", ex.Status, ex.Error)
	}
	before := serverContainers(t, dir)
	if len(before) == 0 {
		t.Fatal("no container labelled with the server's id")
	}
	n.cmd.Process.Kill()
	<-n.exited
	if left := serverContainers(t, dir); len(left) < len(before) {
		// Another server on this host (a test running beside this one)
		// may remove them first: their owner process is gone.
		t.Logf("%d of %d containers left before the restart", len(left), len(before))
	}

	start(t, env...)
	now := map[string]bool{}
	for _, c := range serverContainers(t, dir) {
		now[c] = true
	}
	for _, c := range before {
		if now[c] {
			t.Errorf("container %s of the killed server is still there after the restart", c[:12])
		}
	}
}

// TestDockerUnavailable: with no daemon, creating a docker function warns,
// calling it fails with 503 and a clear message, and sandbox functions
// still run.
func TestDockerUnavailable(t *testing.T) {
	n := start(t, "DOCKER_HOST=unix:///nonexistent/docker.sock")
	var created struct {
		ID       string   `json:"id"`
		Warnings []string `json:"warnings"`
	}
	f := map[string]any{"name": "nodaemon", "runtime": "python", "driver": "docker",
		"code": "def handler(event, context):\n    return 1\n"}
	if st := n.do("POST", "/api/functions", f, &created); st != http.StatusCreated {
		t.Fatalf("create: status %d", st)
	}
	if len(created.Warnings) == 0 || !strings.Contains(created.Warnings[0], "docker") {
		t.Errorf("warnings %q, want one about docker", created.Warnings)
	}
	var e apiError
	if st := n.do("POST", "/api/executions/nodaemon", nil, &e); st != http.StatusServiceUnavailable {
		t.Errorf("invoke: status %d, want 503", st)
	}
	if !strings.Contains(e.Error.Message, "docker") {
		t.Errorf("message %q does not say docker is the problem", e.Error.Message)
	}
	sb := n.create(function{Name: "still-fine", Runtime: "python", Code: "def handler(event, context):\n    return 2\n"})
	if ex := n.invoke(sb.ID, nil); ex.Status != "success" {
		t.Errorf("sandbox function: status %s", ex.Status)
	}
}
