package functions_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/functions"
)

// fakeSecretChecker knows a set of secret names.
type fakeSecretChecker struct {
	mu    sync.Mutex
	names map[string]bool
}

func (c *fakeSecretChecker) SecretExists(_ context.Context, name string) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.names[name], nil
}

func (c *fakeSecretChecker) remove(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.names, name)
}

func TestSecretReferencesMustExist(t *testing.T) {
	n := newNode(t, nil)
	ctx := t.Context()
	secrets := &fakeSecretChecker{names: map[string]bool{"db": true}}
	svc := functions.New(functions.Config{
		Store: n.store, Engine: n.engine, Defaults: fn.Defaults{TimeoutMs: 5000, MemoryMB: 128},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Secrets: secrets,
		CodeDir: filepath.Join(t.TempDir(), "code"), LayerDir: filepath.Join(t.TempDir(), "layers"),
	})
	code := "def handler(e, c):\n    return 1\n"
	wantMissing := func(t *testing.T, err error, secret, variable string) {
		t.Helper()
		var fe *fn.FieldError
		if !errors.As(err, &fe) || fe.Field != "env" || !strings.Contains(fe.Message, `secret "`+secret+`" (for `+variable+`) does not exist`) {
			t.Fatalf("err = %v, want env: secret %q (for %s) does not exist", err, secret, variable)
		}
	}

	_, err := svc.Create(ctx, &fn.Function{Name: "nope", Runtime: "python", Code: code, SecretEnv: map[string]string{"DB_PASSWORD": "db-password"}})
	wantMissing(t, err, "db-password", "DB_PASSWORD")

	f, err := svc.Create(ctx, &fn.Function{Name: "uses", Runtime: "python", Code: code, SecretEnv: map[string]string{"DB_PASSWORD": "db"}})
	if err != nil {
		t.Fatal(err)
	}
	// Without a checker nothing is asked.
	if _, err := n.svc.Create(ctx, &fn.Function{Name: "unchecked", Runtime: "python", Code: code, SecretEnv: map[string]string{"TOKEN": "token"}}); err != nil {
		t.Fatal(err)
	}

	// An update keeps the references it does not change, and checks the new.
	got, changed, err := svc.Update(ctx, "uses", patch(t, map[string]any{"timeout": 6000}))
	if err != nil || !changed || got.SecretEnv["DB_PASSWORD"] != "db" {
		t.Fatalf("update: %+v changed=%v err=%v", got, changed, err)
	}
	_, _, err = svc.Update(ctx, "uses", patch(t, map[string]any{"env": map[string]any{"API_KEY": map[string]string{"secret": "api"}}}))
	wantMissing(t, err, "api", "API_KEY")

	if _, _, err := svc.Publish(ctx, "uses", "", ""); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		secret string
		want   []string
	}{{"db", []string{"uses"}}, {"token", []string{"unchecked"}}, {"other", nil}} {
		used, err := svc.UsedBy(ctx, tc.secret)
		if err != nil || !slices.Equal(used, tc.want) {
			t.Errorf("UsedBy(%s) = %v, %v; want %v", tc.secret, used, err, tc.want)
		}
	}
	// A published version keeps a secret in use after the draft lets it go.
	if _, _, err := svc.Update(ctx, "uses", patch(t, map[string]any{"env": map[string]any{"PLAIN": "x"}})); err != nil {
		t.Fatal(err)
	}
	if used, err := svc.UsedBy(ctx, "db"); err != nil || !slices.Equal(used, []string{"uses"}) {
		t.Errorf("UsedBy(db) after the draft dropped it = %v, %v", used, err)
	}

	// Publishing checks again: the secret may be gone since.
	if _, _, err := svc.Update(ctx, "uses", patch(t, map[string]any{"env": map[string]any{"DB_PASSWORD": map[string]string{"secret": "db"}}})); err != nil {
		t.Fatal(err)
	}
	secrets.remove("db")
	_, _, err = svc.Publish(ctx, f.ID, "", "")
	wantMissing(t, err, "db", "DB_PASSWORD")
}
