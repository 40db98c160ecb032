package lambda

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// Function URLs: Nimbus's (ANY /fn/{name}/…) seen as Lambda's. A URL
// belongs to the function, not to a version or alias (/fn/{name}:{alias}
// calls an alias through it), so these operations take no qualifier.
// AuthType NONE is a public URL; AWS_IAM one that takes the server's
// key (Authorization: Bearer), Nimbus having no IAM.

type urlRequest struct {
	AuthType   string
	Cors       *corsConfig
	InvokeMode string
}

type corsConfig struct {
	AllowCredentials bool     `json:",omitempty"`
	AllowHeaders     []string `json:",omitempty"`
	AllowMethods     []string `json:",omitempty"`
	AllowOrigins     []string `json:",omitempty"`
	ExposeHeaders    []string `json:",omitempty"`
	MaxAge           int      `json:",omitempty"`
}

type urlConfiguration struct {
	FunctionUrl      string
	FunctionArn      string
	AuthType         string
	Cors             *corsConfig `json:",omitempty"`
	CreationTime     string
	LastModifiedTime string
	InvokeMode       string
}

// unqualified is the function r names, refusing a qualifier: what it
// asks for is the function's.
func (h *Handler) unqualified(r *http.Request, what string) (string, error) {
	name, qualifier, err := h.target(r)
	if err == nil && qualifier != "" && qualifier != fn.Latest {
		err = invalidParameter(what + " belongs to the function in Nimbus, not to a version or alias: leave out the qualifier")
	}
	return name, err
}

// createURLConfig serves CreateFunctionUrlConfig.
func (h *Handler) createURLConfig(w http.ResponseWriter, r *http.Request) {
	name, err := h.unqualified(r, "a function URL")
	var req urlRequest
	if err == nil {
		err = readJSON(r, &req)
	}
	var u *fn.URLConfig
	if err == nil {
		u, err = req.urlConfig()
	}
	if err != nil {
		writeError(w, err)
		return
	}
	f, _, err := h.cfg.Functions.Update(r.Context(), name, func(f *fn.Function) error {
		if f.URL != nil && f.URL.Enabled {
			return conflict(fmt.Sprintf("Failed to create function url config for [functionArn = %s]. Error message:  FunctionUrlConfig exists for this Lambda function", h.arns.function(f.Name)))
		}
		f.URL = u
		return nil
	})
	if err != nil {
		writeError(w, h.orNotFound(err, name, ""))
		return
	}
	writeJSON(w, http.StatusCreated, h.urlConfiguration(r, f))
}

// getURLConfig serves GetFunctionUrlConfig.
func (h *Handler) getURLConfig(w http.ResponseWriter, r *http.Request) {
	name, err := h.unqualified(r, "a function URL")
	var f *fn.Function
	if err == nil {
		f, err = h.cfg.Functions.Get(r.Context(), name)
		err = h.orNotFound(err, name, "")
	}
	if err == nil && (f.URL == nil || !f.URL.Enabled) {
		err = notFound("Function URL config", h.arns.function(f.Name))
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, h.urlConfiguration(r, f))
}

func (req *urlRequest) urlConfig() (*fn.URLConfig, error) {
	u := &fn.URLConfig{Enabled: true}
	switch req.AuthType {
	case "NONE":
		u.Auth = fn.URLAuthNone
	case "AWS_IAM":
		u.Auth = fn.URLAuthKey
	default:
		return nil, invalidParameter(fmt.Sprintf("AuthType %q: use NONE (public) or AWS_IAM (the server's key)", req.AuthType))
	}
	if m := req.InvokeMode; m != "" && m != "BUFFERED" {
		return nil, invalidParameter(fmt.Sprintf("InvokeMode %q: Nimbus function URLs answer BUFFERED", m))
	}
	if c := req.Cors; c != nil {
		u.CORS = &fn.CORS{AllowOrigins: c.AllowOrigins, AllowMethods: c.AllowMethods, AllowHeaders: c.AllowHeaders,
			ExposeHeaders: c.ExposeHeaders, MaxAge: c.MaxAge, AllowCredentials: c.AllowCredentials}
	}
	return u, nil
}

func (h *Handler) urlConfiguration(r *http.Request, f *fn.Function) *urlConfiguration {
	c := &urlConfiguration{
		FunctionUrl: scheme(r) + "://" + r.Host + "/fn/" + url.PathEscape(f.Name) + "/",
		FunctionArn: h.arns.function(f.Name), AuthType: "AWS_IAM", InvokeMode: "BUFFERED",
		CreationTime: f.UpdatedAt.UTC().Format(lastModified), LastModifiedTime: f.UpdatedAt.UTC().Format(lastModified),
	}
	if f.URL.Public() {
		c.AuthType = "NONE"
	}
	if x := f.URL.CORS; x != nil {
		c.Cors = &corsConfig{AllowCredentials: x.AllowCredentials, AllowHeaders: x.AllowHeaders, AllowMethods: x.AllowMethods,
			AllowOrigins: x.AllowOrigins, ExposeHeaders: x.ExposeHeaders, MaxAge: x.MaxAge}
	}
	return c
}

func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// Event invoke configs: a function's async settings (fn.AsyncConfig).
// A destination is a function ARN (an async call to it) or an http(s)
// URL (POSTed to); Nimbus has no SQS, SNS or EventBridge. The retry
// backoff, Nimbus's own, stays as it was.

type eventInvokeRequest struct {
	MaximumRetryAttempts     *int
	MaximumEventAgeInSeconds *int
	DestinationConfig        *destinationConfig
}

type destinationConfig struct {
	OnSuccess *destination `json:",omitempty"`
	OnFailure *destination `json:",omitempty"`
}

type destination struct {
	Destination string
}

type eventInvokeConfiguration struct {
	FunctionArn              string
	MaximumRetryAttempts     int
	MaximumEventAgeInSeconds int
	LastModified             float64
	DestinationConfig        destinationConfig
}

// putEventInvokeConfig serves PutFunctionEventInvokeConfig: the settings
// sent replace the function's (what is left out takes the defaults).
func (h *Handler) putEventInvokeConfig(w http.ResponseWriter, r *http.Request) {
	name, err := h.unqualified(r, "an event invoke config")
	var req eventInvokeRequest
	if err == nil {
		err = readJSON(r, &req)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	f, _, err := h.cfg.Functions.Update(r.Context(), name, func(f *fn.Function) error {
		a := &fn.AsyncConfig{MaxRetries: req.MaximumRetryAttempts}
		if f.Async != nil {
			a.RetryBackoff = f.Async.RetryBackoff
		}
		if req.MaximumEventAgeInSeconds != nil {
			a.MaxEventAgeSeconds = *req.MaximumEventAgeInSeconds
		}
		if d := req.DestinationConfig; d != nil {
			var err error
			if a.OnSuccess, err = h.destination(r.Context(), d.OnSuccess); err != nil {
				return err
			}
			if a.OnFailure, err = h.destination(r.Context(), d.OnFailure); err != nil {
				return err
			}
		}
		f.Async = a
		return nil
	})
	if err != nil {
		writeError(w, h.orNotFound(err, name, ""))
		return
	}
	writeJSON(w, http.StatusOK, h.eventInvokeConfiguration(f))
}

// getEventInvokeConfig serves GetFunctionEventInvokeConfig.
func (h *Handler) getEventInvokeConfig(w http.ResponseWriter, r *http.Request) {
	name, err := h.unqualified(r, "an event invoke config")
	var f *fn.Function
	if err == nil {
		f, err = h.cfg.Functions.Get(r.Context(), name)
		err = h.orNotFound(err, name, "")
	}
	if err == nil && f.Async == nil {
		err = notFound("EventInvokeConfig", h.arns.function(f.Name))
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, h.eventInvokeConfiguration(f))
}

// destination maps a Lambda destination to Nimbus's: a function ARN of
// this server, or an http(s) URL.
func (h *Handler) destination(_ context.Context, d *destination) (*fn.Destination, error) {
	if d == nil || d.Destination == "" {
		return nil, nil
	}
	s := d.Destination
	if strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") {
		return &fn.Destination{URL: s}, nil
	}
	if strings.HasPrefix(s, "arn:") && !strings.Contains(s, ":function:") {
		return nil, invalidParameter(fmt.Sprintf("destination %q: Nimbus sends async outcomes to a function (its ARN) or an http(s) URL; it has no SQS, SNS, S3 or EventBridge", s))
	}
	name, qualifier, err := h.arns.parseFunction(s)
	if errors.Is(err, fn.ErrNotFound) {
		return nil, invalidParameter(fmt.Sprintf("destination %q is not a function of this server's region and account", s))
	}
	if err != nil {
		return nil, err
	}
	if qualifier != "" {
		name += ":" + qualifier
	}
	return &fn.Destination{Function: name}, nil
}

func (h *Handler) eventInvokeConfiguration(f *fn.Function) *eventInvokeConfiguration {
	c := &eventInvokeConfiguration{
		FunctionArn:              h.arns.qualified(f.Name, fn.Latest),
		MaximumRetryAttempts:     f.Async.Retries(),
		MaximumEventAgeInSeconds: int(f.Async.MaxAge().Seconds()),
		LastModified:             epochSeconds(f.UpdatedAt),
	}
	for _, d := range []struct {
		from *fn.Destination
		to   **destination
	}{{f.Async.OnSuccessDest(), &c.DestinationConfig.OnSuccess}, {f.Async.OnFailureDest(), &c.DestinationConfig.OnFailure}} {
		switch {
		case d.from == nil:
		case d.from.URL != "":
			*d.to = &destination{Destination: d.from.URL}
		default:
			name, q := fn.ParseQualifier(d.from.Function)
			*d.to = &destination{Destination: h.arns.qualified(name, q)}
		}
	}
	return c
}

// accountSettings serves GetAccountSettings: the server's limits, and
// what its functions use.
func (h *Handler) accountSettings(w http.ResponseWriter, r *http.Request) {
	fns, err := h.cfg.Functions.List(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	// Nimbus has no account-wide limit of calls at once: each function's
	// is maxInstances × concurrency, and their sum is the server's.
	var total, concurrent int64
	for _, f := range fns {
		if f.CodeInfo != nil {
			total += f.CodeInfo.Size
		}
		concurrent += int64(max(f.MaxInstances, 1) * max(f.Concurrency, 1))
	}
	l := h.cfg.Functions.Limits()
	writeJSON(w, http.StatusOK, map[string]any{
		"AccountLimit": map[string]int64{
			"TotalCodeSize":                  0, // no limit but the disk's
			"CodeSizeZipped":                 l.ArchiveBytes,
			"CodeSizeUnzipped":               l.UnpackedBytes,
			"ConcurrentExecutions":           concurrent,
			"UnreservedConcurrentExecutions": concurrent,
		},
		"AccountUsage": map[string]int64{"TotalCodeSize": total, "FunctionCount": int64(len(fns))},
	})
}
