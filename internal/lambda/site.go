package lambda

import (
	"mime"
	"net/http"
	"strings"
)

// Without credentials (no API key: the default on loopback) the Lambda
// API, like the Nimbus API, must not be reachable by a web page of another
// site that makes the user's browser send a request. The api package has
// already refused a Host that is not this server's (DNS rebinding) and an
// Origin of another site. What is left is the request a browser sends
// without asking (no CORS preflight), which may come with no Origin at
// all from older browsers or a no-cors fetch, and whose answer the page
// cannot read but whose effect happens: a "simple" request.
//
// Only POST can be simple here (PUT and DELETE are always preflighted, and
// no preflight is ever answered, so they never leave the browser; GET and
// HEAD change nothing). A simple POST has a CORS-safelisted Content-Type
// (text/plain, application/x-www-form-urlencoded, multipart/form-data) or
// none, and no header outside the safelist. So a POST must show that it
// is not one: a Content-Type outside the safelist (the SDK's
// application/json, Invoke's application/octet-stream), or a header a page
// cannot add without a preflight (any X-Amz-* or amz-sdk-* header, which
// the AWS SDKs and CLI always send, or an Authorization header). With
// credentials, the SigV4 signature, which no page can make, decides.
func checkCrossSite(r *http.Request) error {
	if r.Method != http.MethodPost || !simpleContentType(r.Header.Get("Content-Type")) {
		return nil
	}
	for k := range r.Header {
		k = strings.ToLower(k)
		if strings.HasPrefix(k, "x-amz-") || strings.HasPrefix(k, "amz-sdk-") || k == "authorization" {
			return nil
		}
	}
	return &awsError{Type: "AccessDeniedException", Status: http.StatusForbidden,
		Message: "a POST to the Lambda API needs a Content-Type such as application/json, or the AWS SDK's headers: a request a web page of another site could send is refused"}
}

// simpleContentType reports whether ct is absent or one a browser sends
// without a preflight.
func simpleContentType(ct string) bool {
	if ct == "" {
		return true
	}
	media, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return true // browsers send what they like; do not guess it is safe
	}
	switch media {
	case "text/plain", "application/x-www-form-urlencoded", "multipart/form-data":
		return true
	}
	return false
}
