package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/build/deps/depstest"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "nimbus-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "nimbus")
	build := exec.Command("go", "build", "-race", "-o", binary, "../../cmd/nimbus")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build nimbus:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	depstest.Cleanup()
	os.Exit(code)
}

// nimbus is a running `nimbus serve` process.
type nimbus struct {
	t       *testing.T
	cmd     *exec.Cmd
	url     string
	dataDir string
	apiKey  string
	out     *bytes.Buffer
	exited  chan struct{}
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

// start runs nimbus serve with env on top of a minimal environment, in a
// fresh data dir unless NIMBUS_DATA_DIR is given, and waits until healthy.
func start(t *testing.T, env ...string) *nimbus {
	t.Helper()
	n := &nimbus{t: t, out: new(bytes.Buffer), exited: make(chan struct{})}
	port := freePort(t)
	base := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		fmt.Sprintf("PORT=%d", port),
		"NIMBUS_DATA_DIR=" + t.TempDir(),
		"NIMBUS_LOG_LEVEL=debug",
		"NIMBUS_DOCKER_PULL=never", // tests send nothing to a registry
	}
	for _, kv := range append(base, env...) {
		if k, v, _ := strings.Cut(kv, "="); k == "NIMBUS_DATA_DIR" {
			n.dataDir = v
		} else if k == "NIMBUS_API_KEY" {
			n.apiKey = v
		}
	}
	n.cmd = exec.Command(binary, "serve")
	n.cmd.Env = append(base, env...)
	n.cmd.Dir = t.TempDir()
	n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { n.cmd.Wait(); close(n.exited) }()
	t.Cleanup(func() {
		n.cmd.Process.Kill()
		<-n.exited
		// The binary is built with the race detector: a race it saw fails
		// the test that drove it.
		if strings.Contains(n.out.String(), "WARNING: DATA RACE") {
			t.Error("the server reported a data race")
		}
		if t.Failed() {
			t.Logf("nimbus output:\n%s", n.out.String())
		}
	})
	n.url = fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(n.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return n
			}
		}
		select {
		case <-n.exited:
			t.Fatalf("nimbus exited before it was healthy:\n%s", n.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nimbus not healthy after 20s:\n%s", n.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// do sends a request and decodes the JSON reply into out (if not nil),
// returning the status.
func (n *nimbus) do(method, path string, body any, out any) int {
	n.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			n.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, n.url+path, rd)
	if err != nil {
		n.t.Fatal(err)
	}
	if n.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+n.apiKey)
	}
	if method != "GET" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			n.t.Fatalf("%s %s: %d %q: %v", method, path, resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode
}

type function struct {
	ID           string            `json:"id,omitempty"`
	Name         string            `json:"name"`
	Runtime      string            `json:"runtime,omitempty"`
	Handler      string            `json:"handler,omitempty"`
	Code         string            `json:"code,omitempty"`
	Files        map[string]string `json:"files,omitempty"`
	Env          map[string]string `json:"env,omitempty"`
	Timeout      int               `json:"timeout,omitempty"`
	Memory       int               `json:"memory,omitempty"`
	MaxInstances int               `json:"maxInstances,omitempty"`
	MinInstances int               `json:"minInstances,omitempty"`
	Concurrency  int               `json:"concurrency,omitempty"`
	KeepAlive    int               `json:"keepAlive,omitempty"`
	Revision     int               `json:"revision,omitempty"`
}

type execution struct {
	ExecutionID string          `json:"executionId"`
	FunctionID  string          `json:"functionId"`
	Version     int             `json:"version"`
	Status      string          `json:"status"`
	Result      json.RawMessage `json:"result"`
	Event       json.RawMessage `json:"event"`
	Error       *struct {
		Type, Message, Stack string
	} `json:"error"`
	Logs       string  `json:"logs"`
	StartedAt  string  `json:"startedAt"`
	DurationMs float64 `json:"durationMs"`
	ColdStart  bool    `json:"coldStart"`
}

type apiError struct {
	Error struct {
		Code, Message, Field string
	} `json:"error"`
}

// create registers f and fails the test unless it is created.
func (n *nimbus) create(f function) function {
	n.t.Helper()
	var got function
	if st := n.do("POST", "/api/functions", f, &got); st != http.StatusCreated {
		var e apiError
		n.do("POST", "/api/functions", f, &e)
		n.t.Fatalf("create %s: status %d %+v", f.Name, st, e)
	}
	return got
}

// invoke calls a function and fails the test unless it answers 200.
func (n *nimbus) invoke(id string, event any) execution {
	n.t.Helper()
	var ex execution
	if st := n.do("POST", "/api/executions/"+id, event, &ex); st != http.StatusOK {
		n.t.Fatalf("invoke %s: status %d", id, st)
	}
	return ex
}

func (ex execution) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(ex.Result, v); err != nil {
		t.Fatalf("result %s (status %s, error %+v): %v", ex.Result, ex.Status, ex.Error, err)
	}
}

// stop sends SIGTERM and waits for the process to exit.
func (n *nimbus) stop() {
	n.t.Helper()
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(30 * time.Second):
		n.t.Fatalf("nimbus did not exit 30s after SIGTERM:\n%s", n.out.String())
	}
}

// processesWith lists pids whose command line contains marker.
func processesWith(marker string) []string {
	var pids []string
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(d + "/cmdline")
		if err == nil && bytes.Contains(b, []byte(marker)) {
			pids = append(pids, filepath.Base(d))
		}
	}
	return pids
}
