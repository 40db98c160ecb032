package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/spf13/cobra"
)

// TestSecretsAndKeysCommands runs the commands against a server that
// answers as the API does: a value read from standard input is sent and
// never printed; a key's secret is printed once, on standard output.
func TestSecretsAndKeysCommands(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, r.Method+" "+r.URL.Path+" "+string(b))
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == "PUT":
			w.WriteHeader(404)
			_, _ = io.WriteString(w, `{"error":{"code":"not_found","message":"no such secret"}}`)
		case r.URL.Path == "/api/secrets":
			w.WriteHeader(201)
			_, _ = io.WriteString(w, `{"name":"db","version":1,"usedBy":[]}`)
		case r.URL.Path == "/api/keys":
			w.WriteHeader(201)
			_, _ = io.WriteString(w, `{"id":"k1","name":"ci","scopes":["invoke"],"secret":"nmb_0nce"}`)
		}
	}))
	defer srv.Close()
	env := map[string]string{"NIMBUS_URL": srv.URL, "XDG_CONFIG_HOME": t.TempDir()}
	g := &globals{}
	secrets := func(std stdio) *cobra.Command { return secretsCmd(g, std) }
	keys := func(std stdio) *cobra.Command { return keysCmd(g, std) }

	out, errOut, err := run(t, secrets, env, "hunter2\n", "set", "db")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out+errOut, "hunter2") || !strings.Contains(errOut, "created secret db") {
		t.Errorf("secrets set printed %q %q", out, errOut)
	}
	if _, _, err := run(t, secrets, env, "", "set", "db", "--value", "a", "--from-file", "f"); err == nil {
		t.Error("--value with --from-file accepted")
	}
	out, errOut, err = run(t, keys, env, "", "create", "--name", "ci", "--scope", "invoke", "--expires", "720h", "--rate-limit", "10")
	if err != nil {
		t.Fatal(err)
	}
	if out != "nmb_0nce\n" || !strings.Contains(errOut, "shown only this once") {
		t.Errorf("keys create printed %q %q", out, errOut)
	}
	if _, _, err := run(t, keys, env, "", "create", "--name", "ci"); err == nil {
		t.Error("a key without a scope accepted")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 3 || !strings.Contains(bodies[1], `"value":"hunter2"`) {
		t.Fatalf("sent %q", bodies)
	}
	var k map[string]any
	_ = json.Unmarshal([]byte(strings.SplitN(bodies[2], " ", 3)[2]), &k)
	if k["rateLimit"] != 10.0 || k["expiresAt"] == nil || k["name"] != "ci" {
		t.Errorf("key asked for %v", k)
	}
}
