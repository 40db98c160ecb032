package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/config"
	"github.com/nimbusfaas/nimbus/internal/server"
)

// serve runs a Nimbus on a free loopback port with its data in dir, until
// the end of the test.
func serve(t *testing.T, dir string) string {
	t.Helper()
	ctx := t.Context()
	cfg, err := config.Load(func(string) (string, bool) { return "", false }, "", []string{"--port", "0", "--data-dir", dir})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(ctx, cfg, os.LookupEnv, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	addr, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "http://" + addr.String()
}

func get(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s, %v", url, resp.StatusCode, body, err)
	}
	return body
}

func TestSystemReportsTheEmbeddedBus(t *testing.T) {
	dir := t.TempDir()
	url := serve(t, dir)
	var sys struct {
		Bus struct {
			Mode      string `json:"mode"`
			URL       string `json:"url"`
			Connected bool   `json:"connected"`
			Error     string `json:"error"`
			JetStream *struct {
				Streams int `json:"streams"`
			} `json:"jetstream"`
			Streams []any `json:"streams"`
		} `json:"bus"`
	}
	if err := json.Unmarshal(get(t, url+"/api/system"), &sys); err != nil {
		t.Fatal(err)
	}
	if b := sys.Bus; b.Mode != "embedded" || b.URL != "in-process" || !b.Connected || b.Error != "" || b.JetStream == nil || b.Streams == nil {
		t.Errorf("GET /api/system bus: %+v", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "nats", "jetstream")); err != nil {
		t.Errorf("JetStream store not under the data dir: %v", err)
	}
	if m := string(get(t, url+"/metrics")); !strings.Contains(m, `nimbus_bus_connected{mode="embedded"} 1`) {
		t.Errorf("/metrics has no nimbus_bus_connected 1")
	}
}
