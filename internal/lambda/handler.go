package lambda

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/nimbusfaas/nimbus/internal/build"
	"github.com/nimbusfaas/nimbus/internal/engine"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/trigger/async"
)

// Prefixes are the paths the Lambda API is served under: the API
// versions of Lambda's operations, as the AWS SDKs send them.
var Prefixes = []string{"/2015-03-31/", "/2021-10-31/", "/2019-09-25/", "/2016-08-19/"}

// Serves reports whether path is the Lambda API's.
func Serves(path string) bool {
	for _, p := range Prefixes {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// Functions is the function lifecycle behind the API
// (functions.Service).
type Functions interface {
	Create(ctx context.Context, f *fn.Function) (*fn.Function, error)
	Update(ctx context.Context, idOrName string, change func(*fn.Function) error) (*fn.Function, bool, error)
	Delete(ctx context.Context, idOrName string) (*fn.Function, error)
	Get(ctx context.Context, idOrName string) (*fn.Function, error)
	List(ctx context.Context) ([]*fn.Function, error)
	ResolveQualified(ctx context.Context, idOrName, qualifier string) (*fn.Function, error)
	OpenCode(ctx context.Context, f *fn.Function) (io.ReadCloser, int64, error)
	Limits() build.Limits

	Publish(ctx context.Context, idOrName, description, expectedHash string) (*fn.Version, bool, error)
	Versions(ctx context.Context, idOrName string) (*fn.Function, []*fn.Version, error)
	Version(ctx context.Context, idOrName string, n int) (*fn.Version, error)
	DeleteVersion(ctx context.Context, idOrName string, n int) error
	Aliases(ctx context.Context, idOrName string) ([]*fn.Alias, error)
	GetAlias(ctx context.Context, idOrName, name string) (*fn.Alias, error)
	CreateAlias(ctx context.Context, idOrName string, a *fn.Alias) (*fn.Alias, error)
	UpdateAlias(ctx context.Context, idOrName, name, reason string, change func(*fn.Alias) error) (*fn.Alias, error)
	DeleteAlias(ctx context.Context, idOrName, name string) error
}

// Invoker runs a call (engine.Engine).
type Invoker interface {
	InvokeCall(ctx context.Context, f *fn.Function, c engine.Call) (*fn.Execution, error)
}

// Queue takes async calls (async.Queue).
type Queue interface {
	Enqueue(ctx context.Context, f *fn.Function, c async.Call) (async.Accepted, error)
	// Forget drops a deleted function's queue and dead letters.
	Forget(ctx context.Context, functionID string)
}

// Config wires a Handler.
type Config struct {
	Functions Functions
	Engine    Invoker
	// Queue takes Event invocations; nil: they fail with ServiceException.
	Queue Queue
	// Credentials, when set, make every request need a SigV4 signature by
	// one of its keys; nil lets any request in (see site.go for the
	// cross-site rules that then apply).
	Credentials Credentials
	// Authorizer, when set, decides what each signing key may do.
	Authorizer Authorizer
	// Region and Account are those of the ARNs (DefaultRegion,
	// DefaultAccount when empty).
	Region, Account string
	// MaxBodyBytes bounds an Invoke payload and every request body but
	// code (6 MiB when 0, Lambda's); code (CreateFunction,
	// UpdateFunctionCode) comes base64 in JSON, bounded by the archive
	// limit.
	MaxBodyBytes int64
	Logger       *slog.Logger
}

// Handler serves the Lambda API.
type Handler struct {
	cfg     Config
	log     *slog.Logger
	arns    arns
	mux     *http.ServeMux
	signers signers
}

// New builds a Handler.
func New(cfg Config) *Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if cfg.Account == "" {
		cfg.Account = DefaultAccount
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 6 << 20
	}
	h := &Handler{cfg: cfg, log: cfg.Logger.With("component", "lambda"), arns: arns{region: cfg.Region, account: cfg.Account}, mux: http.NewServeMux()}
	const fns = "/2015-03-31/functions"
	// Each operation with the scope it needs (as the API's route table):
	// the function it acts on is its path's {name}.
	const read, deploy, invoke = "read", "deploy", "invoke"
	for _, r := range []struct {
		pattern string
		scope   string
		serve   http.HandlerFunc
	}{
		{"POST " + fns, deploy, h.createFunction},
		{"GET " + fns, read, h.listFunctions},
		{"GET " + fns + "/", read, h.listFunctions}, // the aws CLI's spelling
		{"GET " + fns + "/{name}", read, h.getFunction},
		{"DELETE " + fns + "/{name}", deploy, h.deleteFunction},
		{"GET " + fns + "/{name}/configuration", read, h.getConfiguration},
		{"PUT " + fns + "/{name}/configuration", deploy, h.updateConfiguration},
		{"PUT " + fns + "/{name}/code", deploy, h.updateCode},
		{"GET " + fns + "/{name}/code", read, h.downloadCode}, // Nimbus's: GetFunction's Code.Location
		{"POST " + fns + "/{name}/invocations", invoke, h.invoke},
		{"POST " + fns + "/{name}/versions", deploy, h.publishVersion},
		{"GET " + fns + "/{name}/versions", read, h.listVersions},
		{"POST " + fns + "/{name}/aliases", deploy, h.createAlias},
		{"GET " + fns + "/{name}/aliases", read, h.listAliases},
		{"GET " + fns + "/{name}/aliases/{alias}", read, h.getAlias},
		{"PUT " + fns + "/{name}/aliases/{alias}", deploy, h.updateAlias},
		{"DELETE " + fns + "/{name}/aliases/{alias}", deploy, h.deleteAlias},
		{"POST /2021-10-31/functions/{name}/url", deploy, h.createURLConfig},
		{"GET /2021-10-31/functions/{name}/url", read, h.getURLConfig},
		{"PUT /2019-09-25/functions/{name}/event-invoke-config", deploy, h.putEventInvokeConfig},
		{"GET /2019-09-25/functions/{name}/event-invoke-config", read, h.getEventInvokeConfig},
		{"GET /2016-08-19/account-settings", read, h.accountSettings},
		{"GET /2016-08-19/account-settings/", read, h.accountSettings},
		{"/", "", h.unknown},
	} {
		h.mux.HandleFunc(r.pattern, h.guard(r.scope, r.serve))
	}
	return h
}

// ServeHTTP checks who calls (auth.go, site.go), reads the body within
// its limit and routes the request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.signed() {
		if err := checkCrossSite(r); err != nil {
			writeError(w, err)
			return
		}
	}
	var v *verifier
	if h.signed() {
		var err error
		// What the signature says (its key, its time) is checked before
		// the body is read: a stranger cannot make the server read one.
		if v, err = h.parseSignature(r); err != nil {
			writeError(w, err)
			return
		}
	}
	limit := h.bodyLimit(r)
	body, err := readBody(http.MaxBytesReader(w, r.Body, limit), r, h.cfg.MaxBodyBytes, v)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		err = tooLarge(fmt.Sprintf("Request must be smaller than %d bytes for this operation", limit))
	}
	if err != nil {
		writeError(w, err)
		return
	}
	r.Body = &bodyReader{Reader: bytes.NewReader(body), b: body}
	if v != nil {
		r = r.WithContext(context.WithValue(r.Context(), keyIDKey{}, v.creds.AccessKeyID))
	}
	h.mux.ServeHTTP(w, r)
}

// guard checks that the signing key may act with scope on the function
// the path names before serve runs.
func (h *Handler) guard(scope string, serve http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if scope == "" {
			serve(w, r)
			return
		}
		name := ""
		if p := r.PathValue("name"); p != "" {
			name, _, _ = h.arns.parseFunction(p)
		}
		ctx, err := h.authorize(r, scope, name)
		if err != nil {
			writeError(w, err)
			return
		}
		serve(w, r.WithContext(ctx))
	}
}

// readBody reads a request's body and, when v is set, checks its
// signature. Until the signature is checked the body is a stranger's: one
// that says it is larger than inMemory bytes (or does not say) goes to a
// temporary file, hashed on the way, and is read into memory only once
// the signature holds, so that a forged upload of an archive (~70 MB)
// cannot make the server hold it.
func readBody(r io.Reader, req *http.Request, inMemory int64, v *verifier) ([]byte, error) {
	if v == nil {
		return io.ReadAll(r)
	}
	h := sha256.New()
	if n := req.ContentLength; n >= 0 && n <= inMemory {
		body := make([]byte, 0, n+1)
		w := bytes.NewBuffer(body)
		if _, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(r, inMemory+1)); err != nil {
			return nil, err
		}
		if int64(w.Len()) > n { // more than it said: refuse, not grow
			return nil, fn.Invalid("Content-Length", "the body is longer than the request says")
		}
		if err := v.verify(req, hex.EncodeToString(h.Sum(nil)), w.Len() == 0); err != nil {
			return nil, err
		}
		return w.Bytes(), nil
	}
	f, err := os.CreateTemp("", "nimbus-lambda-body-*")
	if err != nil {
		return nil, fmt.Errorf("spool a request body: %v: %w", err, fn.ErrUnavailable)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	n, err := io.Copy(io.MultiWriter(f, h), r)
	if err != nil {
		return nil, err // too large (http.MaxBytesError), or the client went away
	}
	if err := v.verify(req, hex.EncodeToString(h.Sum(nil)), n == 0); err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return io.ReadAll(f)
}

// bodyLimit is how large r's body may be: code comes base64 in JSON,
// up to the archive limit; anything else up to MaxBodyBytes.
func (h *Handler) bodyLimit(r *http.Request) int64 {
	p := r.URL.Path
	if (r.Method == http.MethodPost && strings.TrimSuffix(p, "/") == "/2015-03-31/functions") ||
		(r.Method == http.MethodPut && strings.HasSuffix(p, "/code")) {
		return h.cfg.Functions.Limits().ArchiveBytes*4/3 + 64<<10
	}
	return h.cfg.MaxBodyBytes
}

// bodyReader is a request body read whole by ServeHTTP.
type bodyReader struct {
	*bytes.Reader
	b []byte
}

func (*bodyReader) Close() error { return nil }

// body is r's body, read by ServeHTTP.
func body(r *http.Request) []byte {
	if b, ok := r.Body.(*bodyReader); ok {
		return b.b
	}
	return nil
}

// readJSON decodes r's body into v; an empty body leaves v as it is.
// Fields the server does not know are ignored: the SDKs send many.
func readJSON(r *http.Request, v any) error {
	b := body(r)
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return invalidContent("could not parse request body into json: " + err.Error())
	}
	return nil
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// unknown answers a path under the Lambda API's prefixes that is no
// operation of it (or not by that method).
func (h *Handler) unknown(w http.ResponseWriter, r *http.Request) {
	writeError(w, &awsError{Type: "UnknownOperationException", Status: http.StatusNotFound,
		Message: "Nimbus's Lambda API has no operation " + r.Method + " " + r.URL.Path})
}

// function is the function {name} of r's path names, with the qualifier
// in the name or in ?Qualifier= (both: they must agree).
func (h *Handler) target(r *http.Request) (name, qualifier string, err error) {
	name, qualifier, err = h.arns.parseFunction(r.PathValue("name"))
	if err != nil {
		return "", "", err
	}
	if q := r.URL.Query().Get("Qualifier"); q != "" {
		if qualifier != "" && qualifier != q {
			return "", "", invalidParameter("the derived qualifier from the function name does not match the specified qualifier")
		}
		if err := fn.CheckQualifier("Qualifier", q); err != nil {
			return "", "", invalidParameter(err.Error())
		}
		qualifier = q
	}
	return name, qualifier, nil
}
