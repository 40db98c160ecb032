package store_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/store"
	_ "github.com/nimbusfaas/nimbus/internal/store/sqlite"
)

func TestOpenBySchemeAndUnknownSchemes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nimbus.db")
	for _, loc := range []string{"sqlite:" + path, "SQLite:" + path, "sqlite://" + path} {
		s, err := store.Open(t.Context(), loc)
		if err != nil {
			t.Fatalf("Open(%s): %v", loc, err)
		}
		if _, err := s.ListFunctions(t.Context()); err != nil {
			t.Errorf("Open(%s): ListFunctions: %v", loc, err)
		}
		s.Close()
	}
	for _, loc := range []string{"", "/var/lib/nimbus.db", "postgres://u:pw@h/db"} {
		_, err := store.Open(t.Context(), loc)
		if err == nil || !strings.Contains(err.Error(), "sqlite:PATH") {
			t.Errorf("Open(%q) = %v, want an error naming the known stores", loc, err)
		}
		if err != nil && strings.Contains(err.Error(), "pw") {
			t.Errorf("Open(%q) error shows the password: %v", loc, err)
		}
	}
}

func TestRegisterTwicePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("registering sqlite twice did not panic")
		}
	}()
	store.Register("sqlite", func(context.Context, string) (store.Store, error) { return nil, nil })
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"mongodb://h:27017/db", "mongodb://h:27017/db"},
		{"mongodb://user@h/db", "mongodb://user@h/db"},
		{"mongodb://user:s3cret@h1,h2/db?authSource=admin", "mongodb://user:xxxxx@h1,h2/db?authSource=admin"},
		{"mongodb+srv://user:p%40ss@cluster.example", "mongodb+srv://user:xxxxx@cluster.example"},
		{"sqlite:/data/nimbus.db", "sqlite:/data/nimbus.db"},
	}
	for _, tc := range tests {
		if got := store.Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
