package auth_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/auth"
)

// benchAuth is what each request with a key pays: finding the key in the
// cache and checking its hash, its scope and function glob, and its rate
// limit.
func benchAuth(b *testing.B) {
	st := openStore(b, filepath.Join(b.TempDir(), "n.db"))
	s := newServer(b, st, ring(b, 1), "b00t", nil)
	_, key, err := s.keys.Create(admin, auth.KeyRequest{Name: "hook", Scopes: []string{"invoke"}, Functions: []string{"orders-*"}, RateLimit: 1e6})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p, err := s.keys.Authenticate(ctx, key)
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Check(auth.ScopeInvoke, "orders-eu"); err != nil {
			b.Fatal(err)
		}
		p.Allow()
	}
}

func BenchmarkAuthenticate(b *testing.B) { benchAuth(b) }
