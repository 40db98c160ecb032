package lambda

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// Credentials maps an access key id to its secret access key: who may
// sign requests to the Lambda API.
type Credentials interface {
	// Required reports whether requests must be signed now (a server
	// without keys takes unsigned ones).
	Required() bool
	// Secret is the secret of the key id, and whether there is such a key.
	Secret(ctx context.Context, accessKeyID string) (secret string, ok bool)
}

// Authorizer decides what the key that signed a request may do.
type Authorizer interface {
	// Authorize returns ctx carrying who the key is, or why it may not
	// act with scope ("read", "deploy", "invoke") on the function named
	// function ("" for none): a *Denied, or a *Throttled.
	Authorize(ctx context.Context, accessKeyID, scope, function string) (context.Context, error)
	// MayFunction reports whether the key ctx carries may see the
	// function named name (lists show only these).
	MayFunction(ctx context.Context, name string) bool
}

// Denied and Throttled are an Authorizer's refusals.
type (
	Denied    struct{ Msg string }
	Throttled struct {
		Msg        string
		RetryAfter time.Duration
	}
)

func (e *Denied) Error() string    { return e.Msg }
func (e *Throttled) Error() string { return e.Msg }

// APIKeyID is the access key id of the server's API key.
const APIKeyID = "nimbus"

// APIKey is the server's API key (NIMBUS_API_KEY) as the one credential:
// access key id "nimbus", the key as its secret access key.
type APIKey string

// Required implements Credentials.
func (k APIKey) Required() bool { return k != "" }

// Secret implements Credentials.
func (k APIKey) Secret(_ context.Context, id string) (string, bool) {
	if k == "" || id != APIKeyID {
		return "", false
	}
	return string(k), true
}

var _ Credentials = APIKey("")

// MaxClockSkew is how far a signature's time may be from the server's.
const MaxClockSkew = 5 * time.Minute

// maxPresignExpiry bounds X-Amz-Expires (SigV4's limit, seven days).
const maxPresignExpiry = 7 * 24 * time.Hour

const (
	algorithm       = "AWS4-HMAC-SHA256"
	amzDateFormat   = "20060102T150405Z"
	unsignedPayload = "UNSIGNED-PAYLOAD"
	service         = "lambda"
)

// signers holds one SDK signer per key id and secret. The signer caches
// the keys it derives (by key id, region and day, not by secret): one
// signer per secret keeps a changed secret from being served the old
// key, and, signatures being scoped to the server's region only, its
// cache stays one entry.
type signers struct {
	mu sync.Mutex
	m  map[string]*v4.Signer
}

// maxSigners bounds the signers kept: past it they are dropped and made
// again.
const maxSigners = 1024

func (s *signers) get(c aws.Credentials) *v4.Signer {
	k := c.AccessKeyID + "\x00" + c.SecretAccessKey
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.m[k]; ok {
		return v
	}
	if s.m == nil || len(s.m) >= maxSigners {
		s.m = map[string]*v4.Signer{}
	}
	v := v4.NewSigner()
	s.m[k] = v
	return v
}

// verifier is a request's signature as it claims to be, read before its
// body: checked against the body by verify.
type verifier struct {
	signer        *v4.Signer
	creds         aws.Credentials
	region        string
	at            time.Time
	signedHeaders []string
	signature     string
	presigned     bool
}

func signatureError(typ, msg string) error {
	return &awsError{Type: typ, Status: http.StatusForbidden, Message: msg}
}

var errSignatureMismatch = signatureError("InvalidSignatureException",
	"The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.")

// parseSignature reads the SigV4 signature of r, from its Authorization
// header or its query (a presigned URL), and checks what can be checked
// without the body: the form, the key, the time.
func (h *Handler) parseSignature(r *http.Request) (*verifier, error) {
	var credential, signed, date string
	v := &verifier{}
	auth := r.Header.Get("Authorization")
	q := r.URL.Query()
	switch {
	case strings.HasPrefix(auth, algorithm+" "):
		for _, part := range strings.Split(strings.TrimPrefix(auth, algorithm+" "), ",") {
			k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
			switch k {
			case "Credential":
				credential = val
			case "SignedHeaders":
				signed = val
			case "Signature":
				v.signature = val
			}
		}
		date = r.Header.Get("X-Amz-Date")
	case q.Get("X-Amz-Signature") != "":
		if q.Get("X-Amz-Algorithm") != algorithm {
			return nil, signatureError("IncompleteSignatureException", "X-Amz-Algorithm must be "+algorithm)
		}
		credential, signed, date, v.signature = q.Get("X-Amz-Credential"), q.Get("X-Amz-SignedHeaders"), q.Get("X-Amz-Date"), q.Get("X-Amz-Signature")
		v.presigned = true
	case auth != "":
		return nil, signatureError("IncompleteSignatureException", "Authorization must be an AWS Signature Version 4 ("+algorithm+") header")
	default:
		return nil, signatureError("MissingAuthenticationTokenException", "Missing Authentication Token: this server has an API key; sign requests with AWS Signature Version 4, access key id \""+APIKeyID+"\" and the API key as the secret access key")
	}
	if credential == "" || signed == "" || v.signature == "" || date == "" {
		return nil, signatureError("IncompleteSignatureException", "the signature lacks Credential, SignedHeaders, Signature or X-Amz-Date")
	}
	// Credential is {key id}/{yyyymmdd}/{region}/lambda/aws4_request.
	scope := strings.Split(credential, "/")
	if len(scope) != 5 || scope[3] != service || scope[4] != "aws4_request" {
		return nil, signatureError("IncompleteSignatureException", fmt.Sprintf("Credential %q is not {access key id}/{date}/{region}/lambda/aws4_request", credential))
	}
	if scope[2] != h.cfg.Region {
		return nil, signatureError("InvalidSignatureException", fmt.Sprintf("Credential should be scoped to a valid region, not '%s': this server's region is '%s' (NIMBUS_LAMBDA_REGION); sign for it (--region with the aws CLI)", scope[2], h.cfg.Region))
	}
	secret, ok := h.cfg.Credentials.Secret(r.Context(), scope[0])
	if !ok {
		return nil, signatureError("UnrecognizedClientException", "The security token included in the request is invalid.")
	}
	at, err := time.Parse(amzDateFormat, date)
	if err != nil || at.Format("20060102") != scope[1] {
		return nil, signatureError("IncompleteSignatureException", fmt.Sprintf("X-Amz-Date %q is not a time of the credential's date %s (yyyymmddThhmmssZ)", date, scope[1]))
	}
	now := time.Now().UTC()
	if v.presigned {
		secs, err := strconv.Atoi(q.Get("X-Amz-Expires"))
		if err != nil || secs < 1 || time.Duration(secs)*time.Second > maxPresignExpiry {
			return nil, signatureError("IncompleteSignatureException", "X-Amz-Expires must be a number of seconds from 1 to 604800")
		}
		if at.After(now.Add(MaxClockSkew)) || now.After(at.Add(time.Duration(secs)*time.Second)) {
			return nil, signatureError("InvalidSignatureException", fmt.Sprintf("Signature expired: the URL was signed at %s for %d s; it is now %s", date, secs, now.Format(amzDateFormat)))
		}
	} else if d := now.Sub(at); d > MaxClockSkew || d < -MaxClockSkew {
		return nil, signatureError("InvalidSignatureException", fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - 5 min.) or later than %s (%s + 5 min.)",
			date, now.Add(-MaxClockSkew).Format(amzDateFormat), now.Format(amzDateFormat), now.Add(MaxClockSkew).Format(amzDateFormat), now.Format(amzDateFormat)))
	}
	v.creds = aws.Credentials{AccessKeyID: scope[0], SecretAccessKey: secret}
	v.signer = h.signers.get(v.creds)
	v.region, v.at, v.signedHeaders = scope[2], at, strings.Split(signed, ";")
	return v, nil
}

// verify recomputes the signature of r, with body, by the SDK's own
// signer and compares it with the one sent, in constant time. A header
// signature covers the body's SHA-256; a presigned URL may leave an empty
// body unsigned (UNSIGNED-PAYLOAD).
func (v *verifier) verify(r *http.Request, bodySHA256 string, empty bool) error {
	hashes := []string{bodySHA256}
	if v.presigned && empty {
		hashes = append(hashes, unsignedPayload)
	}
	for _, payload := range hashes {
		got, err := v.sign(r, payload)
		if err != nil {
			return err
		}
		if subtle.ConstantTimeCompare([]byte(got), []byte(v.signature)) == 1 {
			return nil
		}
	}
	return errSignatureMismatch
}

// sign is the signature of r's method, path, query and signed headers
// with payload as the body's hash.
func (v *verifier) sign(r *http.Request, payload string) (string, error) {
	u := *r.URL
	u.Scheme, u.Host = "http", r.Host
	req := &http.Request{Method: r.Method, URL: &u, Host: r.Host, Header: http.Header{}, ContentLength: 0}
	for _, name := range v.signedHeaders {
		switch name {
		case "host":
		case "content-length":
			req.ContentLength = r.ContentLength
		default:
			if vals, ok := r.Header[http.CanonicalHeaderKey(name)]; ok {
				req.Header[http.CanonicalHeaderKey(name)] = vals
			}
		}
	}
	if !v.presigned {
		err := v.signer.SignHTTP(r.Context(), v.creds, req, payload, service, v.region, v.at, noHoisting)
		if err != nil {
			return "", err
		}
		_, sig, _ := strings.Cut(req.Header.Get("Authorization"), "Signature=")
		return sig, nil
	}
	q := u.Query()
	q.Del("X-Amz-Signature")
	u.RawQuery = q.Encode()
	signedURL, _, err := v.signer.PresignHTTP(r.Context(), v.creds, req, payload, service, v.region, v.at, noHoisting)
	if err != nil {
		return "", err
	}
	pu, err := url.Parse(signedURL)
	if err != nil {
		return "", err
	}
	return pu.Query().Get("X-Amz-Signature"), nil
}

// noHoisting keeps signed headers as headers: the verifier signs only
// those the client did, where it sent them.
func noHoisting(o *v4.SignerOptions) { o.DisableHeaderHoisting = true }

// presign makes a URL to path with query on r's host that GET may fetch
// for ttl without other credentials: signed with the key id r was signed
// with, or APIKeyID.
func (h *Handler) presign(r *http.Request, path string, query url.Values, ttl time.Duration) (string, error) {
	u := &url.URL{Scheme: scheme(r), Host: r.Host, Path: path}
	if !h.signed() {
		u.RawQuery = query.Encode()
		return u.String(), nil
	}
	id := APIKeyID
	if v, err := h.parseSignature(r); err == nil {
		id = v.creds.AccessKeyID
	}
	secret, ok := h.cfg.Credentials.Secret(r.Context(), id)
	if !ok {
		return "", fmt.Errorf("no secret for key %q to sign a link with: %w", id, fn.ErrUnavailable)
	}
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	q.Set("X-Amz-Expires", strconv.Itoa(int(ttl/time.Second)))
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, u.String(), nil)
	if err != nil {
		return "", err
	}
	creds := aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}
	signed, _, err := h.signers.get(creds).PresignHTTP(r.Context(), creds, req, unsignedPayload, service, h.cfg.Region, time.Now())
	return signed, err
}

// signed reports whether requests must be signed.
func (h *Handler) signed() bool { return h.cfg.Credentials != nil && h.cfg.Credentials.Required() }

type keyIDKey struct{}

// authorize checks that the key that signed r may act with scope on the
// function named function, and returns r's context carrying who it is.
func (h *Handler) authorize(r *http.Request, scope, function string) (context.Context, error) {
	id, _ := r.Context().Value(keyIDKey{}).(string)
	if h.cfg.Authorizer == nil || id == "" {
		return r.Context(), nil
	}
	ctx, err := h.cfg.Authorizer.Authorize(r.Context(), id, scope, function)
	var denied *Denied
	var throttled *Throttled
	switch {
	case errors.As(err, &denied):
		return nil, &awsError{Type: "AccessDeniedException", Status: http.StatusForbidden, Message: denied.Msg}
	case errors.As(err, &throttled):
		return nil, &awsError{Type: "TooManyRequestsException", Status: http.StatusTooManyRequests, Message: throttled.Msg,
			RetryAfter: throttled.RetryAfter}
	case err != nil:
		return nil, err
	}
	return ctx, nil
}

// mayFunction reports whether r's key may see the function named name.
func (h *Handler) mayFunction(r *http.Request, name string) bool {
	if h.cfg.Authorizer == nil {
		return true
	}
	if id, _ := r.Context().Value(keyIDKey{}).(string); id == "" {
		return true
	}
	return h.cfg.Authorizer.MayFunction(r.Context(), name)
}
