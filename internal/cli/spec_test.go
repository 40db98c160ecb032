package cli_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/cli"
)

func TestParseSpec(t *testing.T) {
	env := map[string]string{"TOKEN": "s3cret", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	s, err := cli.ParseSpec([]byte(`functions:
  - name: a
    runtime: python
    code: src
    memory: 256
    env:
      TOKEN: "${TOKEN}"
      MIXED: "x-${TOKEN}-${EMPTY}-y"
      LITERAL: "$${TOKEN}"
      NUMBER: 3
      DB_PASSWORD: {secret: db-password}
    url: {enabled: true, auth: key}
    schedules:
      - {name: hourly, rate: 1h}
  - name: b
    runtime: nodejs
`), "/spec", lookup)
	if err != nil {
		t.Fatal(err)
	}
	a, b := s.Functions[0], s.Functions[1]
	if a.CodeDir != filepath.FromSlash("/spec/src") || b.CodeDir != filepath.FromSlash("/spec") {
		t.Errorf("code dirs %q, %q", a.CodeDir, b.CodeDir)
	}
	e := a.Settings["env"].(map[string]any)
	for k, want := range map[string]string{"TOKEN": "s3cret", "MIXED": "x-s3cret--y", "LITERAL": "${TOKEN}", "NUMBER": "3"} {
		if e[k] != want {
			t.Errorf("env %s = %q, want %q", k, e[k], want)
		}
	}
	if ref, _ := e["DB_PASSWORD"].(map[string]any); ref["secret"] != "db-password" {
		t.Errorf("env DB_PASSWORD = %v, want {secret: db-password}", e["DB_PASSWORD"])
	}
	if _, ok := a.Settings["code"]; ok {
		t.Error("code, a directory, is sent to the server as code")
	}
	// What the spec leaves out that deploy manages is set to none, so
	// that removing it from the spec removes it from the function.
	if v, ok := b.Settings["url"]; !ok || v != nil {
		t.Errorf("b's url = %v, %v; want null", v, ok)
	}
	if _, ok := b.Settings["memory"]; ok {
		t.Error("b's memory, left out, is sent")
	}

	for _, tc := range []struct{ name, spec, want string }{
		{"unset variable", "functions:\n  - {name: a, runtime: python, env: {X: '${NOPE}'}}\n", "${NOPE} is not set"},
		{"unknown field", "functions:\n  - {name: a, runtime: python, files: {}}\n", "unknown field files"},
		{"unknown top level", "function:\n  - {name: a}\n", "not a spec"},
		{"wrong type", "functions:\n  - {name: a, runtime: python, memory: lots}\n", "memory"},
		{"wrong nested field", "functions:\n  - {name: a, runtime: python, url: {enable: true}}\n", "enable"},
		{"secret reference with more", "functions:\n  - {name: a, runtime: python, env: {X: {secret: s, other: 1}}}\n", "env.X: want a value or {secret: NAME}"},
		{"secret reference not a name", "functions:\n  - {name: a, runtime: python, env: {X: {secret: 5}}}\n", "env.X"},
		{"no name", "functions:\n  - {runtime: python}\n", "name: is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cli.ParseSpec([]byte(tc.spec), "/spec", lookup)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestResolveConnection(t *testing.T) {
	ctxs := &cli.Contexts{Current: "prod", Contexts: []cli.Context{
		{Name: "prod", URL: "https://prod", Key: "pk"},
		{Name: "dev", URL: "http://dev"},
	}}
	for _, tc := range []struct {
		name             string
		flagURL, flagKey string
		flagCtx          string
		env              map[string]string
		wantURL, wantKey string
		wantErr          bool
	}{
		{name: "current context", wantURL: "https://prod", wantKey: "pk"},
		{name: "--context", flagCtx: "dev", wantURL: "http://dev"},
		{name: "env over context", env: map[string]string{"NIMBUS_URL": "http://env", "NIMBUS_API_KEY": "ek"}, wantURL: "http://env", wantKey: "ek"},
		{name: "flags over env", flagURL: "http://flag", flagKey: "fk", env: map[string]string{"NIMBUS_URL": "http://env", "NIMBUS_API_KEY": "ek"}, wantURL: "http://flag", wantKey: "fk"},
		{name: "env key with the context's URL", env: map[string]string{"NIMBUS_API_KEY": "ek"}, wantURL: "https://prod", wantKey: "ek"},
		{name: "unknown context", flagCtx: "nope", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lookup := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			got, err := ctxs.Resolve(tc.flagURL, tc.flagKey, tc.flagCtx, lookup)
			if (err != nil) != tc.wantErr || got.URL != tc.wantURL || got.Key != tc.wantKey {
				t.Errorf("Resolve = %+v, %v; want %s %s (error %v)", got, err, tc.wantURL, tc.wantKey, tc.wantErr)
			}
		})
	}
	none := &cli.Contexts{}
	if got, _ := none.Resolve("", "", "", func(string) (string, bool) { return "", false }); got.URL != cli.DefaultURL {
		t.Errorf("no context, no env: %q, want %q", got.URL, cli.DefaultURL)
	}
}
