package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryReadCommandPrintsJSON runs every command that takes -o (those
// whose help offers "output format: table, json, yaml") with -o json and
// parses what it prints. A read command added without a line here fails
// the test.
func TestEveryReadCommandPrintsJSON(t *testing.T) {
	s := startServer(t)
	c := deployEcho(t, s)
	c.ok("invoke", "echo", "-d", `{"x": 1}`)
	c.ok("publish", "echo")
	c.ok("alias", "set", "echo", "live", "1")
	c.ok("context", "add", "local", "--url", s.url)
	c.ok("secrets", "set", "db", "--value", "v")
	var execs struct {
		Executions []struct {
			ExecutionID string `json:"executionId"`
		} `json:"executions"`
	}
	decode(t, c.ok("executions", "echo", "-o", "json").stdout, &execs)
	id := execs.Executions[0].ExecutionID

	commands := map[string][]string{
		"fn list":           {"fn", "list"},
		"fn get":            {"fn", "get", "echo"},
		"executions":        {"executions", "echo"},
		"execution":         {"execution", "echo", id},
		"logs":              {"logs", "echo"},
		"metrics":           {"metrics", "echo"},
		"versions":          {"versions", "echo"},
		"alias list":        {"alias", "list", "echo"},
		"replay":            {"replay", "echo", id},
		"dead-letters list": {"dead-letters", "list", "echo"},
		"schedules":         {"schedules"},
		"context list":      {"context", "list"},
		"top":               {"top"},
		"keys list":         {"keys", "list"},
		"secrets list":      {"secrets", "list"},
		"audit":             {"audit"},
	}
	extra := map[string][]string{"metrics (server)": {"metrics"}}
	for name, args := range commands {
		extra[name] = args
	}
	for name, args := range extra {
		t.Run(name, func(t *testing.T) {
			out := c.ok(append(args, "-o", "json")...).stdout
			var v any
			if err := json.Unmarshal([]byte(out), &v); err != nil {
				t.Fatalf("nimbus %s -o json: %v\n%s", strings.Join(args, " "), err, out)
			}
			if _, ok := v.(map[string]any); !ok {
				t.Errorf("nimbus %s -o json: not an object: %.200s", strings.Join(args, " "), out)
			}
		})
	}

	helps, err := filepath.Glob("testdata/help/nimbus_*.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range helps {
		b, err := os.ReadFile(h)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "output format: table, json, yaml") {
			continue
		}
		name := strings.ReplaceAll(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(h), "nimbus_"), ".txt"), "_", " ")
		if _, ok := commands[name]; !ok {
			t.Errorf("nimbus %s takes -o but is not run with -o json here", name)
		}
	}
}
