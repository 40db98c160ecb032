package cli_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// binary is the nimbus binary TestMain builds once for every test. It is
// built without the race detector: the client is a sequence of HTTP calls,
// and the server's races are test/e2e's to find.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "nimbus-cli-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "nimbus")
	build := exec.Command("go", "build", "-o", binary, "../../cmd/nimbus")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build nimbus:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// server is a running `nimbus serve`.
type server struct {
	url string
	out *bytes.Buffer
}

// startServer runs nimbus serve on a free loopback port with a fresh data
// directory and env, until the test ends, and waits until it is healthy.
func startServer(t *testing.T, env ...string) *server {
	t.Helper()
	port := freePort(t)
	s := &server{url: fmt.Sprintf("http://127.0.0.1:%d", port), out: new(bytes.Buffer)}
	cmd := exec.Command(binary, "serve")
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		fmt.Sprintf("PORT=%d", port),
		"NIMBUS_DATA_DIR=" + t.TempDir(),
		"NIMBUS_DOCKER_PULL=never",
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Dir = t.TempDir()
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("nimbus serve output:\n%s", s.out)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(s.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		select {
		case <-exited:
			t.Fatalf("nimbus serve exited before it was healthy:\n%s", s.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nimbus serve not healthy after 20s:\n%s", s.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// client runs the binary as a user's shell would: in dir, with a config
// directory of its own, talking to url (NIMBUS_URL, unless url is "").
type client struct {
	t      *testing.T
	dir    string
	env    []string
	config string // XDG_CONFIG_HOME
}

func newClient(t *testing.T, url string) *client {
	t.Helper()
	c := &client{t: t, dir: t.TempDir(), config: t.TempDir()}
	c.env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + t.TempDir(),
		"XDG_CONFIG_HOME=" + c.config,
	}
	if url != "" {
		c.env = append(c.env, "NIMBUS_URL="+url)
	}
	return c
}

// result is what one run of the binary did.
type result struct {
	stdout, stderr string
	code           int
}

// run runs nimbus args with stdin, and returns its output and exit
// status.
func (c *client) run(stdin string, args ...string) result {
	c.t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = c.dir
	cmd.Env = c.env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errOut.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		c.t.Fatalf("nimbus %v: %v", args, err)
	}
	return r
}

// ok runs nimbus args and fails the test unless it exits 0.
func (c *client) ok(args ...string) result {
	c.t.Helper()
	r := c.run("", args...)
	if r.code != 0 {
		c.t.Fatalf("nimbus %s: exit status %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// write writes files (path → contents) under the client's directory.
func (c *client) write(files map[string]string) {
	c.t.Helper()
	for p, body := range files {
		full := filepath.Join(c.dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			c.t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			c.t.Fatal(err)
		}
	}
}

// getJSON GETs path from the server into out, and returns the status.
func getJSON(t *testing.T, url string, out any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == 200 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("GET %s: %v: %s", url, err, b)
		}
	}
	return resp.StatusCode
}
