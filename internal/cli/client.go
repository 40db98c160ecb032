package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// DefaultURL is the server a client talks to when nothing names one.
const DefaultURL = "http://127.0.0.1:3000"

// ErrFunctionFailed is returned by Invoke when the call ran but its status
// is not success: the function raised, timed out, ran out of memory or
// crashed.
var ErrFunctionFailed = errors.New("function failed")

// APIError is a reply of the server with a status of 400 or more. It wraps
// fn.ErrNotFound for a 404, so that callers can tell "no such function".
type APIError struct {
	Status  int
	Code    string
	Message string
	Field   string
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if e.Field != "" && !strings.Contains(msg, e.Field) {
		msg = e.Field + ": " + msg
	}
	return fmt.Sprintf("%s (HTTP %d)", msg, e.Status)
}

func (e *APIError) Unwrap() error {
	if e.Status == http.StatusNotFound {
		return fn.ErrNotFound
	}
	return nil
}

// Client calls one Nimbus server's REST API.
type Client struct {
	URL  string // base URL, without a trailing slash
	Key  string // API key; "" sends none
	HTTP *http.Client
}

// NewClient is a client of the server at baseURL.
func NewClient(baseURL, key string) *Client {
	return &Client{URL: strings.TrimRight(baseURL, "/"), Key: key, HTTP: &http.Client{Timeout: 20 * time.Minute}}
}

// do sends a request and returns the reply's body when its status is
// below 400, else an *APIError. contentType is set when body is not nil.
func (c *Client) do(ctx context.Context, method, path string, body io.Reader, contentType string, header http.Header) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.URL+path, body)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if c.Key != "" {
		req.Header.Set("Authorization", "Bearer "+c.Key)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 400 {
		apiErr := &APIError{Status: resp.StatusCode}
		var e struct {
			Error struct {
				Code, Message, Field string
			} `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil {
			apiErr.Code, apiErr.Message, apiErr.Field = e.Error.Code, e.Error.Message, e.Error.Field
		} else {
			apiErr.Message = strings.TrimSpace(string(b))
		}
		return resp, b, apiErr
	}
	return resp, b, nil
}

// get GETs path and returns the body.
func (c *Client) get(ctx context.Context, path string) ([]byte, error) {
	_, b, err := c.do(ctx, http.MethodGet, path, nil, "", nil)
	return b, err
}

// sendJSON sends v (or raw JSON bytes) as application/json.
func (c *Client) sendJSON(ctx context.Context, method, path string, v any, header http.Header) (*http.Response, []byte, error) {
	var b []byte
	switch v := v.(type) {
	case []byte:
		b = v
	case json.RawMessage:
		b = v
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			return nil, nil, err
		}
	}
	return c.do(ctx, method, path, bytes.NewReader(b), "application/json", header)
}

func fnPath(name string) string { return "/api/functions/" + url.PathEscape(name) }

// ListFunctions returns the API's JSON reply ({"functions": [...]}) and
// the functions in it.
func (c *Client) ListFunctions(ctx context.Context) ([]byte, []*fn.Function, error) {
	b, err := c.get(ctx, "/api/functions")
	if err != nil {
		return nil, nil, err
	}
	var out struct {
		Functions []*fn.Function `json:"functions"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, nil, fmt.Errorf("list functions: %w", err)
	}
	return b, out.Functions, nil
}

// GetFunction returns the API's JSON of one function and the function.
func (c *Client) GetFunction(ctx context.Context, name string) ([]byte, *fn.Function, error) {
	b, err := c.get(ctx, fnPath(name))
	if err != nil {
		return nil, nil, fmt.Errorf("function %s: %w", name, err)
	}
	f := new(fn.Function)
	if err := json.Unmarshal(b, f); err != nil {
		return nil, nil, fmt.Errorf("function %s: %w", name, err)
	}
	return b, f, nil
}

// DeleteFunction deletes a function, its instances and its history.
func (c *Client) DeleteFunction(ctx context.Context, name string) error {
	if _, _, err := c.do(ctx, http.MethodDelete, fnPath(name), nil, "", nil); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

// Code returns a function's code as the server's zip.
func (c *Client) Code(ctx context.Context, name string) ([]byte, error) {
	b, err := c.get(ctx, fnPath(name)+"/code")
	if err != nil {
		return nil, fmt.Errorf("code of %s: %w", name, err)
	}
	return b, nil
}

// CreateFunction creates a function from its settings (the API's JSON
// fields) and a zip of its code, as one multipart form.
func (c *Client) CreateFunction(ctx context.Context, settings map[string]any, zip []byte) (*fn.Function, error) {
	js, err := json.Marshal(settings)
	if err != nil {
		return nil, err
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, part := range []struct {
		disposition, contentType string
		data                     []byte
	}{
		{`form-data; name="function"`, "application/json", js},
		{`form-data; name="archive"; filename="code.zip"`, "application/zip", zip},
	} {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", part.disposition)
		h.Set("Content-Type", part.contentType)
		pw, err := mw.CreatePart(h)
		if err != nil {
			return nil, err
		}
		if _, err := pw.Write(part.data); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	_, b, err := c.do(ctx, http.MethodPost, "/api/functions", &body, mw.FormDataContentType(), nil)
	if err != nil {
		return nil, fmt.Errorf("create %v: %w", settings["name"], err)
	}
	return decodeFunction(b)
}

// UpdateFunction changes the fields in patch (the API's JSON names).
func (c *Client) UpdateFunction(ctx context.Context, name string, patch map[string]any) (*fn.Function, error) {
	_, b, err := c.sendJSON(ctx, http.MethodPut, fnPath(name), patch, nil)
	if err != nil {
		return nil, fmt.Errorf("update %s: %w", name, err)
	}
	return decodeFunction(b)
}

// PutCode replaces a function's code with a zip; a handler that is not ""
// changes with it.
func (c *Client) PutCode(ctx context.Context, name string, zip []byte, handler string) (*fn.Function, error) {
	p := fnPath(name) + "/code"
	if handler != "" {
		p += "?handler=" + url.QueryEscape(handler)
	}
	_, b, err := c.do(ctx, http.MethodPut, p, bytes.NewReader(zip), "application/zip", nil)
	if err != nil {
		return nil, fmt.Errorf("code of %s: %w", name, err)
	}
	return decodeFunction(b)
}

func decodeFunction(b []byte) (*fn.Function, error) {
	f := new(fn.Function)
	if err := json.Unmarshal(b, f); err != nil {
		return nil, err
	}
	return f, nil
}

// Invoke calls a function with event (JSON; empty means {}) and waits for
// the execution, which it returns with the reply's JSON. The error is
// ErrFunctionFailed, wrapped with the function's message, when the call ran
// and did not succeed; the execution is returned with it.
func (c *Client) Invoke(ctx context.Context, name string, event []byte) ([]byte, *fn.Execution, error) {
	_, b, err := c.sendJSON(ctx, http.MethodPost, "/api/executions/"+url.PathEscape(name), event, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("invoke %s: %w", name, err)
	}
	ex := new(fn.Execution)
	if err := json.Unmarshal(b, ex); err != nil {
		return nil, nil, fmt.Errorf("invoke %s: %w", name, err)
	}
	if ex.Status != fn.StatusSuccess {
		msg := string(ex.Status)
		if ex.Error != nil {
			msg += ": " + strings.TrimPrefix(ex.Error.Type+": ", ": ") + ex.Error.Message
		}
		return b, ex, fmt.Errorf("%s: %w: %s", name, ErrFunctionFailed, msg)
	}
	return b, ex, nil
}

// InvokeAsync queues a call and returns its execution id.
func (c *Client) InvokeAsync(ctx context.Context, name string, event []byte) (string, error) {
	h := http.Header{"X-Nimbus-Invocation-Type": {"Event"}}
	_, b, err := c.sendJSON(ctx, http.MethodPost, "/api/executions/"+url.PathEscape(name), event, h)
	if err != nil {
		return "", fmt.Errorf("invoke %s: %w", name, err)
	}
	var out struct {
		ExecutionID string `json:"executionId"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.ExecutionID == "" {
		return "", fmt.Errorf("invoke %s: no execution id in %q", name, b)
	}
	return out.ExecutionID, nil
}

// Executions returns a function's executions, newest first, as the API's
// JSON ({"executions": [...], "nextBefore"?}) and decoded. status "" and
// limit 0 leave the server's defaults.
func (c *Client) Executions(ctx context.Context, name, status string, limit int) ([]byte, []*fn.Execution, error) {
	q := url.Values{}
	if status != "" {
		q.Set("status", status)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	p := "/api/executions/" + url.PathEscape(name) + "/history"
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	b, err := c.get(ctx, p)
	if err != nil {
		return nil, nil, fmt.Errorf("executions of %s: %w", name, err)
	}
	var out struct {
		Executions []*fn.Execution `json:"executions"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, nil, err
	}
	return b, out.Executions, nil
}

// Execution returns one execution in full, with its event and logs.
func (c *Client) Execution(ctx context.Context, name, id string) ([]byte, *fn.Execution, error) {
	b, err := c.get(ctx, "/api/executions/"+url.PathEscape(name)+"/"+url.PathEscape(id))
	if err != nil {
		return nil, nil, fmt.Errorf("execution %s of %s: %w", id, name, err)
	}
	ex := new(fn.Execution)
	if err := json.Unmarshal(b, ex); err != nil {
		return nil, nil, err
	}
	return b, ex, nil
}
