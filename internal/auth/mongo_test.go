package auth_test

import (
	"bytes"
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"

	"github.com/nimbusfaas/nimbus/internal/auth"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/store/mongo"
	"github.com/nimbusfaas/nimbus/internal/store/mongo/mongotest"
)

func TestMain(m *testing.M) { mongotest.Main(m) }

// TestMongoHoldsOnlyCiphertext reads every document of every collection
// of a MongoDB store, raw, after a secret and a key were made through
// package auth: neither plaintext is there.
func TestMongoHoldsOnlyCiphertext(t *testing.T) {
	uri := mongotest.Shared(t).NewDatabase(t)
	ctx := context.Background()
	st, err := mongo.Open(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := newServer(t, st, ring(t, 1), "b00t", nil)
	plain := "pl41n-" + fn.NewID()
	if _, err := s.secrets.Create(admin, "db-password", plain, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.secrets.Update(admin, "db-password", plain+"-2", nil); err != nil {
		t.Fatal(err)
	}
	_, key, err := s.keys.Create(admin, auth.KeyRequest{Name: "ci", Scopes: []string{"deploy"}})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.secrets.Reveal(admin, "db-password"); err != nil || v != plain+"-2" {
		t.Fatalf("reveal: %q, %v", v, err)
	}

	client, err := mongodrv.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(ctx)
	cs, err := connstring.ParseAndValidate(uri)
	if err != nil {
		t.Fatal(err)
	}
	db := client.Database(cs.Database)
	names, err := db.ListCollectionNames(ctx, bson.D{})
	if err != nil || len(names) == 0 {
		t.Fatalf("collections: %v, %v", names, err)
	}
	docs := 0
	for _, name := range names {
		cur, err := db.Collection(name).Find(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		for cur.Next(ctx) {
			docs++
			raw := []byte(cur.Current)
			if bytes.Contains(raw, []byte(plain)) {
				t.Errorf("collection %s holds a secret's plaintext", name)
			}
			if bytes.Contains(raw, []byte(key[17:])) {
				t.Errorf("collection %s holds a key's secret", name)
			}
		}
		cur.Close(ctx)
	}
	if docs < 3 {
		t.Errorf("read %d documents: the check looked at nothing", docs)
	}
}
