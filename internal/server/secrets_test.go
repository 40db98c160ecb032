package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/config"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/server"
)

// lockedBuffer is a log the server writes while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestSecretNeverLeaves: a secret referenced from a function's env
// reaches its worker, and its plaintext appears in no API answer, no log
// line of the server (at debug level) and no file of the data dir.
func TestSecretNeverLeaves(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"NIMBUS_API_KEY": "b00t", "NIMBUS_LOG_LEVEL": "debug"}
	lookup := func(k string) (string, bool) {
		if v, ok := env[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	}
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, "", []string{"--port", "0", "--data-dir", dir})
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	ctx := t.Context()
	srv, err := server.New(ctx, cfg, lookup, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	addr, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}
	t.Cleanup(stop)
	url := "http://" + addr.String()

	plain := "pl41n-" + fn.NewID()
	var answers bytes.Buffer // every API answer the test gets
	call := func(method, path string, body any) (int, []byte) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequestWithContext(ctx, method, url+path, rd)
		req.Header.Set("Authorization", "Bearer b00t")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		answers.Write(data)
		for k, v := range resp.Header {
			answers.WriteString(k + ": " + strings.Join(v, ",") + "\n")
		}
		return resp.StatusCode, data
	}

	if st, b := call("POST", "/api/secrets", map[string]any{"name": "db-password", "value": plain, "description": "the database"}); st != 201 {
		t.Fatalf("create secret: %d %s", st, b)
	}
	code := "import hashlib, os\n\ndef handler(event, context):\n    return hashlib.sha256(os.environ['DB_PASSWORD'].encode()).hexdigest()\n"
	fnBody := map[string]any{"name": "uses-secret", "runtime": "python", "code": code,
		"env": map[string]any{"MODE": "prod", "DB_PASSWORD": map[string]string{"secret": "db-password"}}}
	if st, b := call("POST", "/api/functions", fnBody); st != 201 {
		t.Fatalf("create function: %d %s", st, b)
	}
	// An unknown secret is refused at create.
	bad := map[string]any{"name": "bad-ref", "runtime": "python", "code": code, "env": map[string]any{"X": map[string]string{"secret": "nope"}}}
	if st, b := call("POST", "/api/functions", bad); st != 400 || !strings.Contains(string(b), "nope") {
		t.Errorf("a reference to no secret: %d %s", st, b)
	}
	st, b := call("POST", "/api/executions/uses-secret", map[string]any{})
	var ex struct {
		ID     string          `json:"executionId"`
		Status string          `json:"status"`
		Result json.RawMessage `json:"result"`
	}
	json.Unmarshal(b, &ex)
	sum := sha256.Sum256([]byte(plain))
	if st != 200 || ex.Status != "success" || string(ex.Result) != `"`+hex.EncodeToString(sum[:])+`"` {
		t.Fatalf("invoke: %d %s, want the hash of the secret", st, b)
	}
	// Everything the API shows of it.
	if _, b := call("GET", "/api/functions/uses-secret", nil); !strings.Contains(string(b), `"secret":"db-password"`) {
		t.Errorf("the function does not show its reference: %s", b)
	}
	for _, p := range []string{"/api/functions", "/api/executions/uses-secret/history", "/api/executions/uses-secret/" + ex.ID,
		"/api/secrets", "/api/secrets/db-password", "/api/audit", "/api/functions/uses-secret/code", "/api/metrics/functions/uses-secret", "/metrics"} {
		call("GET", p, nil)
	}
	call("POST", "/api/functions/uses-secret/versions", map[string]any{})
	call("GET", "/api/functions/uses-secret/versions/1", nil)
	if st, b := call("DELETE", "/api/secrets/db-password", nil); st != 409 || !strings.Contains(string(b), "uses-secret") {
		t.Errorf("deleting a secret in use: %d %s", st, b)
	}
	stop()
	if strings.Contains(answers.String(), plain) {
		t.Error("an API answer holds the secret's plaintext")
	}
	if strings.Contains(logs.String(), plain) {
		t.Error("the server's log holds the secret's plaintext")
	}
	if !strings.Contains(logs.String(), "level=DEBUG") {
		t.Error("the log has no debug lines: the check looked at less than it should")
	}
	files := 0
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		files++
		if bytes.Contains(data, []byte(plain)) {
			t.Errorf("%s holds the secret's plaintext", p)
		}
		return nil
	})
	if files < 3 {
		t.Errorf("looked at %d files", files)
	}
}
