package lambda

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// TestWriteError: every domain sentinel maps to its Lambda error: status,
// X-Amzn-ErrorType, Type, and the message under both spellings the SDK
// reads.
func TestWriteError(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		typ    string
		fault  string
	}{
		{fmt.Errorf("function x: %w", fn.ErrNotFound), 404, "ResourceNotFoundException", "User"},
		{fn.Invalid("timeout", "too long"), 400, "InvalidParameterValueException", "User"},
		{fmt.Errorf("build: %w", fn.ErrBuildFailed), 400, "InvalidParameterValueException", "User"},
		{fmt.Errorf("taken: %w", fn.ErrConflict), 409, "ResourceConflictException", "User"},
		{fmt.Errorf("stale: %w", fn.ErrPrecondition), 412, "PreconditionFailedException", "User"},
		{fmt.Errorf("big: %w", fn.ErrTooLarge), 413, "RequestTooLargeException", "User"},
		{&http.MaxBytesError{Limit: 10}, 413, "RequestTooLargeException", "User"},
		{fmt.Errorf("busy: %w", fn.ErrCapacity), 429, "TooManyRequestsException", "User"},
		{fmt.Errorf("no driver: %w", fn.ErrUnavailable), 500, "ServiceException", "Service"},
		{fmt.Errorf("open /var/lib/nimbus/x: disk full"), 500, "ServiceException", "Service"},
		{invalidContent("bad json"), 400, "InvalidRequestContentException", "User"},
		{notFound("Function", "arn:aws:lambda:us-east-1:000000000000:function:x"), 404, "ResourceNotFoundException", "User"},
		{conflict("Function already exist: x"), 409, "ResourceConflictException", "User"},
		{tooLarge("Request must be smaller than 6291456 bytes"), 413, "RequestTooLargeException", "User"},
	} {
		w := httptest.NewRecorder()
		writeError(w, tc.err)
		var body struct {
			Type     string
			Message  string `json:"Message"`
			Message2 string `json:"message"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		if w.Code != tc.status || w.Header().Get("X-Amzn-ErrorType") != tc.typ || body.Type != tc.fault || body.Message == "" || body.Message != body.Message2 {
			t.Errorf("%v: %d %s %+v, want %d %s %s", tc.err, w.Code, w.Header().Get("X-Amzn-ErrorType"), body, tc.status, tc.typ, tc.fault)
		}
		if tc.status == 429 && w.Header().Get("Retry-After") == "" {
			t.Errorf("%v: no Retry-After", tc.err)
		}
		if tc.status == 500 && strings.Contains(body.Message, "/var/lib") {
			t.Errorf("%v: the message names the host's paths: %q", tc.err, body.Message)
		}
	}
}

// rotating is credentials whose secret can change.
type rotating struct{ secret string }

func (r *rotating) Required() bool { return true }

func (r *rotating) Secret(_ context.Context, id string) (string, bool) {
	return r.secret, id == APIKeyID
}

// TestSecretChange: once a key's secret changes, signatures with the old
// one are refused at once (the SDK's signer caches derived keys by key
// id, not by secret: the verifier must not share one).
func TestSecretChange(t *testing.T) {
	creds := &rotating{secret: "old"}
	h := &Handler{cfg: Config{Credentials: creds, Region: DefaultRegion}}
	check := func(secret string) error {
		req := httptest.NewRequest("GET", "http://127.0.0.1:3000/2015-03-31/functions", nil)
		if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: APIKeyID, SecretAccessKey: secret}, req,
			"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "lambda", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		v, err := h.parseSignature(req)
		if err != nil {
			return err
		}
		return v.verify(req, hex.EncodeToString(emptySHA256[:]), true)
	}
	if err := check("old"); err != nil {
		t.Fatalf("the current secret: %v", err)
	}
	creds.secret = "new"
	if err := check("old"); err == nil {
		t.Error("the old secret is still taken after the change")
	}
	if err := check("new"); err != nil {
		t.Errorf("the new secret: %v", err)
	}
}

var emptySHA256 = sha256.Sum256(nil)
