package soak_test

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
	"sync"
	"syscall"
	"testing"
	"time"
)

// The binary is built without the race detector, even when the tests run
// with it: the soak measures the memory, threads and speed of the binary
// users run, which the race detector multiplies. It is built on first use,
// so the trend check's unit tests need no build.
var (
	buildOnce sync.Once
	binary    string
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func nimbusBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "nimbus-soak")
		if buildErr != nil {
			return
		}
		binary = filepath.Join(buildDir, "nimbus")
		build := exec.Command("go", "build", "-o", binary, "../../cmd/nimbus")
		var out bytes.Buffer
		build.Stdout, build.Stderr = &out, &out
		if err := build.Run(); err != nil {
			buildErr = fmt.Errorf("build nimbus: %w\n%s", err, out.String())
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// nimbus is a running `nimbus serve` process.
type nimbus struct {
	t      *testing.T
	cmd    *exec.Cmd
	url    string
	out    *syncBuffer
	exited chan struct{}
	client *http.Client
}

// syncBuffer is the server's output, written by exec's copying goroutine
// while the test may read it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
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
// fresh data dir, and waits until it is healthy.
func start(t *testing.T, env ...string) *nimbus {
	t.Helper()
	n := &nimbus{t: t, out: new(syncBuffer), exited: make(chan struct{})}
	port := freePort(t)
	base := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		fmt.Sprintf("PORT=%d", port),
		"NIMBUS_DATA_DIR=" + t.TempDir(),
		"NIMBUS_DOCKER_PULL=never", // tests send nothing to a registry
	}
	n.cmd = exec.Command(nimbusBinary(t), "serve")
	n.cmd.Env = append(base, env...)
	n.cmd.Dir = t.TempDir()
	n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { n.cmd.Wait(); close(n.exited) }()
	t.Cleanup(func() {
		n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.exited:
		case <-time.After(30 * time.Second):
			n.cmd.Process.Kill()
			<-n.exited
			t.Error("nimbus did not exit 30s after SIGTERM")
		}
		if t.Failed() {
			out := n.out.String()
			if len(out) > 64<<10 {
				out = "…" + out[len(out)-64<<10:]
			}
			t.Logf("nimbus output:\n%s", out)
		}
	})
	// Enough idle connections for every call in flight, so that the load
	// does not open and close a connection per call.
	n.client = &http.Client{
		Timeout:   2 * time.Minute,
		Transport: &http.Transport{MaxIdleConnsPerHost: maxInFlight + 16},
	}
	n.url = fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(30 * time.Second)
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
			t.Fatalf("nimbus not healthy after 30s:\n%s", n.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (n *nimbus) pid() int { return n.cmd.Process.Pid }

// request sends a JSON request and decodes a 2xx reply into out (if not
// nil); it returns the status and the reply. Unlike the e2e harness it
// returns errors instead of failing the test: it is called from many
// goroutines, and the soak counts what went wrong.
func (n *nimbus) request(method, path string, body any, out any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, n.url+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, data, fmt.Errorf("%s %s: read reply: %w", method, path, err)
	}
	if out != nil && len(data) > 0 && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, data, fmt.Errorf("%s %s: %d %q: %w", method, path, resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode, data, nil
}

// metrics reads the named series (without labels) from /metrics.
func (n *nimbus) metrics(names ...string) (map[string]float64, error) {
	resp, err := n.client.Get(n.url + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %d", resp.StatusCode)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(data), "\n") {
		name, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		for _, want := range names {
			if name == want {
				var v float64
				if _, err := fmt.Sscan(value, &v); err != nil {
					return nil, fmt.Errorf("/metrics: %q: %w", line, err)
				}
				out[name] = v
			}
		}
	}
	for _, want := range names {
		if _, ok := out[want]; !ok {
			return nil, fmt.Errorf("/metrics has no %s", want)
		}
	}
	return out, nil
}

type function struct {
	ID        string            `json:"id,omitempty"`
	Name      string            `json:"name"`
	Runtime   string            `json:"runtime,omitempty"`
	Code      string            `json:"code,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
	Timeout   int               `json:"timeout,omitempty"`
	Memory    int               `json:"memory,omitempty"`
	KeepAlive int               `json:"keepAlive,omitempty"`
	Version   int               `json:"version,omitempty"`
}

type execution struct {
	Status    string          `json:"status"`
	Result    json.RawMessage `json:"result"`
	ColdStart bool            `json:"coldStart"`
	Error     *struct {
		Type, Message string
	} `json:"error"`
}

// create registers f and fails the test unless it is created.
func (n *nimbus) create(f function) function {
	n.t.Helper()
	var got function
	st, body, err := n.request("POST", "/api/functions", f, &got)
	if err != nil || st != http.StatusCreated {
		n.t.Fatalf("create %s: status %d %s: %v", f.Name, st, body, err)
	}
	return got
}
