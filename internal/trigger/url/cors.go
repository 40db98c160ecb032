package url

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// CORS: a URL with CORS settings answers browsers' preflights itself,
// without invoking its function, and adds the CORS headers to the
// function's responses when the request's Origin is allowed. A URL
// without them leaves CORS to the function: preflights reach it too.

// isPreflight reports whether r is a browser's CORS preflight.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}

// allowOrigin is the Access-Control-Allow-Origin to answer origin with,
// or "" when origin may not read responses.
func allowOrigin(c *fn.CORS, origin string) string {
	if origin == "" {
		return ""
	}
	if slices.Contains(c.AllowOrigins, "*") {
		return "*" // normalize refuses credentials with "*"
	}
	if slices.Contains(c.AllowOrigins, strings.ToLower(strings.TrimSuffix(origin, "/"))) {
		return origin
	}
	return ""
}

// simpleMethods need no listing: a browser sends them without asking.
var simpleMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost}

// preflight answers a preflight from c: 204 with what is allowed, or 403
// (and no CORS headers, so the browser refuses) when the origin, method
// or a header is not.
func preflight(w http.ResponseWriter, r *http.Request, c *fn.CORS) {
	h := w.Header()
	h.Add("Vary", "Origin")
	origin := allowOrigin(c, r.Header.Get("Origin"))
	if origin == "" {
		writeMessage(w, http.StatusForbidden, "CORS preflight refused: origin not allowed")
		return
	}
	method := r.Header.Get("Access-Control-Request-Method")
	if !slices.Contains(c.AllowMethods, "*") && !slices.Contains(c.AllowMethods, strings.ToUpper(method)) && !slices.Contains(simpleMethods, method) {
		writeMessage(w, http.StatusForbidden, "CORS preflight refused: method not allowed")
		return
	}
	var asked []string
	for _, v := range r.Header.Values("Access-Control-Request-Headers") {
		for name := range strings.SplitSeq(v, ",") {
			if name = strings.ToLower(strings.TrimSpace(name)); name != "" {
				asked = append(asked, name)
			}
		}
	}
	if !slices.Contains(c.AllowHeaders, "*") {
		for _, name := range asked {
			if !slices.Contains(c.AllowHeaders, name) {
				writeMessage(w, http.StatusForbidden, "CORS preflight refused: header "+strconv.Quote(name)+" not allowed")
				return
			}
		}
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Methods", method) // what was asked, as allowed
	if len(asked) > 0 {
		h.Set("Access-Control-Allow-Headers", strings.Join(asked, ", "))
	}
	if c.MaxAge > 0 {
		h.Set("Access-Control-Max-Age", strconv.Itoa(c.MaxAge))
	}
	if c.AllowCredentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	w.WriteHeader(http.StatusNoContent)
}

// addCORS adds the CORS headers of a response to r, when r's Origin is
// allowed.
func addCORS(w http.ResponseWriter, r *http.Request, c *fn.CORS) {
	h := w.Header()
	h.Add("Vary", "Origin")
	origin := allowOrigin(c, r.Header.Get("Origin"))
	if origin == "" {
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	if c.AllowCredentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	if len(c.ExposeHeaders) > 0 {
		h.Set("Access-Control-Expose-Headers", strings.Join(c.ExposeHeaders, ", "))
	}
}
