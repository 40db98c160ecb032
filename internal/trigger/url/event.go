package url

import (
	"encoding/base64"
	"mime"
	"net"
	"net/http"
	neturl "net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Event is the API Gateway HTTP API payload v2.0 that a function URL
// sends its function, as Lambda's function URLs do.
type Event struct {
	Version               string            `json:"version"`
	RouteKey              string            `json:"routeKey"`
	RawPath               string            `json:"rawPath"`
	RawQueryString        string            `json:"rawQueryString"`
	Cookies               []string          `json:"cookies,omitempty"`
	Headers               map[string]string `json:"headers"`
	QueryStringParameters map[string]string `json:"queryStringParameters,omitempty"`
	RequestContext        RequestContext    `json:"requestContext"`
	Body                  string            `json:"body,omitempty"`
	IsBase64Encoded       bool              `json:"isBase64Encoded"`
}

// RequestContext is the event's requestContext.
type RequestContext struct {
	AccountID    string      `json:"accountId"`
	APIID        string      `json:"apiId"`
	DomainName   string      `json:"domainName"`
	DomainPrefix string      `json:"domainPrefix"`
	HTTP         HTTPContext `json:"http"`
	RequestID    string      `json:"requestId"`
	RouteKey     string      `json:"routeKey"`
	Stage        string      `json:"stage"`
	Time         string      `json:"time"`
	TimeEpoch    int64       `json:"timeEpoch"`
}

// HTTPContext is requestContext.http.
type HTTPContext struct {
	Method    string `json:"method"`
	Path      string `json:"path"`
	Protocol  string `json:"protocol"`
	SourceIP  string `json:"sourceIp"`
	UserAgent string `json:"userAgent"`
}

// request is what the event is made of: the request, the part of its path
// below /fn/{name}, and its body.
type request struct {
	r         *http.Request
	function  string // the name or id in the path: the "URL id"
	path      string // below /fn/{name}, "/" at least, decoded
	rawPath   string // the same, as sent
	body      []byte
	id        string    // the execution id
	at        time.Time // when the request came in
	keyedCall bool      // the URL takes a key: credentials are not passed on
}

// timeLayout is requestContext.time's, as Lambda writes it.
const timeLayout = "02/Jan/2006:15:04:05 -0700"

// event builds the payload v2.0 event of q.
func (q *request) event() *Event {
	r := q.r
	ev := &Event{
		Version:        "2.0",
		RouteKey:       "$default",
		RawPath:        q.rawPath,
		RawQueryString: r.URL.RawQuery,
		Headers:        make(map[string]string, len(r.Header)+1),
		RequestContext: RequestContext{
			AccountID:    "anonymous",
			APIID:        q.function,
			DomainName:   hostOnly(r.Host),
			DomainPrefix: domainPrefix(r.Host),
			HTTP: HTTPContext{
				Method:    r.Method,
				Path:      q.path,
				Protocol:  r.Proto,
				SourceIP:  sourceIP(r.RemoteAddr),
				UserAgent: r.UserAgent(),
			},
			RequestID: q.id,
			RouteKey:  "$default",
			Stage:     "$default",
			Time:      q.at.UTC().Format(timeLayout),
			TimeEpoch: q.at.UnixMilli(),
		},
	}
	for name, values := range r.Header {
		name = strings.ToLower(name)
		switch {
		case name == "cookie":
			for _, v := range values {
				for c := range strings.SplitSeq(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						ev.Cookies = append(ev.Cookies, c)
					}
				}
			}
			continue
		case q.keyedCall && isCredentialHeader(name, r):
			continue
		}
		ev.Headers[name] = strings.Join(values, ",")
	}
	if r.Host != "" {
		ev.Headers["host"] = r.Host // Go keeps it out of r.Header
	}
	if r.URL.RawQuery != "" {
		params, _ := neturl.ParseQuery(r.URL.RawQuery) // what parses, as Lambda does
		ev.QueryStringParameters = make(map[string]string, len(params))
		for k, vs := range params {
			ev.QueryStringParameters[k] = strings.Join(vs, ",")
		}
	}
	if len(q.body) > 0 {
		if isText(r.Header.Get("Content-Type"), q.body) {
			ev.Body = string(q.body)
		} else {
			ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(q.body), true
		}
	}
	return ev
}

// isText reports whether a body can go in the event as it is: valid UTF-8
// of a textual content type, or of none.
func isText(contentType string, body []byte) bool {
	if !utf8.Valid(body) {
		return false
	}
	if contentType == "" {
		return true
	}
	media, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	if strings.HasPrefix(media, "text/") {
		return true
	}
	switch media {
	case "application/json", "application/xml", "application/javascript", "application/ecmascript",
		"application/x-www-form-urlencoded", "application/graphql", "application/yaml", "application/x-yaml",
		"application/x-ndjson", "application/csv", "image/svg+xml":
		return true
	}
	return strings.HasSuffix(media, "+json") || strings.HasSuffix(media, "+xml")
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

// domainPrefix is the first label of the host name (all of an IP address).
func domainPrefix(hostport string) string {
	h := hostOnly(hostport)
	if net.ParseIP(strings.Trim(h, "[]")) != nil {
		return h
	}
	prefix, _, _ := strings.Cut(h, ".")
	return prefix
}

func sourceIP(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return h
	}
	return remote
}
