package url

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// Keys decides whether the credentials of a request let it invoke f
// through its URL. Today the server's API key does (APIKey); scoped invoke
// keys plug in here later.
type Keys interface {
	MayInvoke(r *http.Request, f *fn.Function) bool
}

// APIKey lets a request invoke any function when it carries this key, as
// "Authorization: Bearer <key>" or "X-Api-Key: <key>". An empty key (a
// server without one) lets every request invoke.
type APIKey string

// MayInvoke implements Keys.
func (k APIKey) MayInvoke(r *http.Request, _ *fn.Function) bool {
	if k == "" {
		return true
	}
	got := credential(r)
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(k)) == 1
}

var _ Keys = APIKey("")

// credential is the key a request carries, or "".
func credential(r *http.Request) string {
	if got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return got
	}
	return r.Header.Get("X-Api-Key")
}

// mayInvoke is the one decision whether r may invoke f through its URL: a
// public URL (auth "none") lets anyone; otherwise Keys decides.
func (h *Handler) mayInvoke(r *http.Request, f *fn.Function) bool {
	return f.URL.Public() || h.cfg.Keys.MayInvoke(r, f)
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
