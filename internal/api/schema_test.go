package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"testing"
)

// GET /api/schema/spec serves docs/nimbus.schema.json byte for byte.
func TestSpecSchema(t *testing.T) {
	want, err := os.ReadFile("../../docs/nimbus.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, options{key: "k3y"})
	req, _ := http.NewRequest("GET", h.srv.URL+"/api/schema/spec", nil)
	req.Header.Set("Authorization", "Bearer k3y")
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/schema+json" {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the served schema is not docs/nimbus.schema.json: copy it to internal/api/spec.schema.json")
	}
	if !json.Valid(got) {
		t.Fatal("not JSON")
	}
}
