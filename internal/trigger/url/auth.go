package url

import (
	"crypto/subtle"
	"net/http"
	"strings"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// Keys decides whether the credentials of a request let it invoke f
// through its URL: nil if they do, else why not.
type Keys interface {
	Authorize(r *http.Request, f *fn.Function) *Refusal
}

// Refusal is why a request may not invoke a function: its status (401,
// 403, 429), a message, and for a 429 when to try again.
type Refusal struct {
	Status     int
	Message    string
	RetryAfter time.Duration
}

// APIKey lets a request invoke any function when it carries this key, as
// "Authorization: Bearer <key>" or "X-Api-Key: <key>". An empty key (a
// server without one) lets every request invoke.
type APIKey string

// Authorize implements Keys.
func (k APIKey) Authorize(r *http.Request, _ *fn.Function) *Refusal {
	if k == "" {
		return nil
	}
	got := credential(r)
	if got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(k)) == 1 {
		return nil
	}
	return &Refusal{Status: http.StatusUnauthorized, Message: "Unauthorized"}
}

var _ Keys = APIKey("")

// credential is the key a request carries, or "".
func credential(r *http.Request) string {
	if got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return got
	}
	return r.Header.Get("X-Api-Key")
}

// authorize is the one decision whether r may invoke f through its URL: a
// public URL (auth "none") lets anyone; otherwise Keys decides.
func (h *Handler) authorize(r *http.Request, f *fn.Function) *Refusal {
	if f.URL.Public() {
		return nil
	}
	return h.cfg.Keys.Authorize(r, f)
}

// credentialHeaders are the headers a key comes in. A URL that takes a key
// does not pass them on to the function: the key was Nimbus's to check,
// not the function's to keep.
func isCredentialHeader(name string, r *http.Request) bool {
	switch name {
	case "x-api-key":
		return true
	case "authorization":
		return strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	return false
}
