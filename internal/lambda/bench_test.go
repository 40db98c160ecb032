package lambda

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/nimbusfaas/nimbus/internal/build"
	"github.com/nimbusfaas/nimbus/internal/engine"
	"github.com/nimbusfaas/nimbus/internal/fn"
)

// oneFunction is a functions service of one function, as resolved from
// its cache.
type oneFunction struct {
	Functions
	f *fn.Function
}

func (o oneFunction) ResolveQualified(context.Context, string, string) (*fn.Function, error) {
	return o.f, nil
}
func (o oneFunction) Limits() build.Limits { return build.DefaultLimits }

// instantEngine answers every call at once with its event.
type instantEngine struct{}

func (instantEngine) InvokeCall(_ context.Context, f *fn.Function, c engine.Call) (*fn.Execution, error) {
	return &fn.Execution{ID: fn.NewID(), FunctionID: f.ID, Status: fn.StatusSuccess, Result: c.Event}, nil
}

// BenchmarkInvoke is what the Lambda front end costs a call, its engine
// answering at once: unsigned, and with the signature checked.
func BenchmarkInvoke(b *testing.B) {
	f := &fn.Function{ID: fn.NewID(), Name: "bench", Runtime: "python", Handler: "main.handler"}
	event := []byte(`{"hello":"world","n":1}`)
	for _, signed := range []bool{false, true} {
		name := "unsigned"
		cfg := Config{Functions: oneFunction{f: f}, Engine: instantEngine{}}
		if signed {
			name, cfg.Credentials = "signed", APIKey("k")
		}
		h := New(cfg)
		b.Run(name, func(b *testing.B) {
			sum := sha256.Sum256(event)
			for b.Loop() {
				b.StopTimer()
				req := httptest.NewRequest("POST", "http://127.0.0.1:3000/2015-03-31/functions/bench/invocations", bytes.NewReader(event))
				req.Header.Set("Content-Type", "application/octet-stream")
				if signed {
					if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: APIKeyID, SecretAccessKey: "k"}, req,
						hex.EncodeToString(sum[:]), "lambda", "us-east-1", time.Now()); err != nil {
						b.Fatal(err)
					}
				}
				w := httptest.NewRecorder()
				b.StartTimer()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK || !json.Valid(w.Body.Bytes()) {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}
