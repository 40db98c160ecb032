package runtimeapi

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// The Runtime API, version 2018-06-01, as Lambda serves it to a runtime.
const apiPrefix = "/2018-06-01/runtime"

func (r *Relay) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+apiPrefix+"/invocation/next", r.next)
	mux.HandleFunc("POST "+apiPrefix+"/invocation/{id}/response", r.response)
	mux.HandleFunc("POST "+apiPrefix+"/invocation/{id}/error", r.invocationError)
	mux.HandleFunc("POST "+apiPrefix+"/init/error", r.initErrorPost)
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		writeError(w, http.StatusNotFound, "InvalidRequest", "no such Runtime API resource: "+req.Method+" "+req.URL.Path)
	})
	return mux
}

// next is GET …/invocation/next: the long poll for the next event. The
// first one ends the bootstrap's init.
func (r *Relay) next(w http.ResponseWriter, req *http.Request) {
	r.markReady()
	var rq *runtime.Request
	select {
	case rq = <-r.queue:
	case <-req.Context().Done():
		return
	case <-r.stop:
		return
	}
	c := &call{req: rq, logs: newLogBuf(r.logLimit)}
	r.mu.Lock()
	r.drainLocked() // what came before belongs to the one before
	r.calls[rq.ID] = c
	r.order = append(r.order, c)
	r.mu.Unlock()

	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Lambda-Runtime-Aws-Request-Id", rq.ID)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(rq.DeadlineMs, 10))
	arn := r.arn
	if rq.FunctionARN != "" {
		arn = rq.FunctionARN
	}
	h.Set("Lambda-Runtime-Invoked-Function-Arn", arn)
	h.Set("Lambda-Runtime-Trace-Id", traceID())
	if len(rq.ClientContext) > 0 && string(rq.ClientContext) != "null" {
		h.Set("Lambda-Runtime-Client-Context", string(rq.ClientContext))
	}
	event := rq.Event
	if len(event) == 0 {
		event = json.RawMessage("null")
	}
	h.Set("Content-Length", strconv.Itoa(len(event)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(event)
}

// markReady sends the ready frame, with the init's output, the first time
// the bootstrap asks for an event.
func (r *Relay) markReady() {
	r.mu.Lock()
	if r.ready {
		r.mu.Unlock()
		return
	}
	r.drainLocked()
	r.ready = true
	logs := r.initLogs
	r.initLogs = nil
	r.mu.Unlock()
	resp := &runtime.Response{Type: runtime.TypeReady, MaxRSSKiB: r.maxRSSKiB()}
	logs.into(resp)
	r.send(resp)
}

// take removes the call id from those in flight, with its output to now:
// nil, and the status and error type to answer, when there is none.
func (r *Relay) take(id string) (*call, int, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls[id]
	if c == nil {
		if r.answered[id] {
			return nil, http.StatusForbidden, errInvalidTransition
		}
		return nil, http.StatusBadRequest, errInvalidRequestID
	}
	r.drainLocked()
	delete(r.calls, id)
	for i, o := range r.order {
		if o == c {
			r.order = append(r.order[:i], r.order[i+1:]...)
			break
		}
	}
	if len(r.answered) > 1024 {
		clear(r.answered) // a bound; a late second answer then gets 400
	}
	r.answered[id] = true
	return c, 0, ""
}

// known reports whether id is a call in flight, and if not how to answer.
func (r *Relay) known(id string) (int, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.calls[id] != nil:
		return 0, ""
	case r.answered[id]:
		return http.StatusForbidden, errInvalidTransition
	}
	return http.StatusBadRequest, errInvalidRequestID
}

// response is POST …/invocation/{id}/response: the call's result.
func (r *Relay) response(w http.ResponseWriter, req *http.Request) {
	id := req.PathValue("id")
	if st, typ := r.known(id); st != 0 {
		writeError(w, st, typ, "invalid request id "+strconv.Quote(id))
		return
	}
	body, over, err := readLimited(req.Body, req.ContentLength, r.resultLimit)
	if err != nil {
		writeError(w, http.StatusBadRequest, "TruncatedHTTPRequest", err.Error())
		return
	}
	result := body
	if !over {
		result = jsonResult(body)
		over = len(result) > r.resultLimit
	}
	c, st, typ := r.take(id)
	if c == nil {
		writeError(w, st, typ, "invalid request id "+strconv.Quote(id))
		return
	}
	resp := &runtime.Response{Type: runtime.TypeResult, ID: id, MaxRSSKiB: r.maxRSSKiB()}
	c.logs.into(resp)
	if over {
		msg := fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", r.resultLimit)
		resp.Error = &runtime.Error{Type: "Function.ResponseSizeTooLarge", Message: msg}
		r.send(resp)
		// Read on (to a bound) so that the runtime, still sending, gets
		// the answer rather than a reset connection.
		_, _ = io.Copy(io.Discard, io.LimitReader(req.Body, maxDiscard))
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusRequestEntityTooLarge, errTooLarge, fmt.Sprintf("Exceeded maximum allowed payload size (%d bytes).", r.resultLimit))
		return
	}
	resp.Result = result
	r.send(resp)
	writeAccepted(w)
}

// invocationError is POST …/invocation/{id}/error: the handler failed.
func (r *Relay) invocationError(w http.ResponseWriter, req *http.Request) {
	id := req.PathValue("id")
	if st, typ := r.known(id); st != 0 {
		writeError(w, st, typ, "invalid request id "+strconv.Quote(id))
		return
	}
	e, err := readError(req, r.resultLimit)
	if err != nil {
		writeError(w, http.StatusBadRequest, "TruncatedHTTPRequest", err.Error())
		return
	}
	c, st, typ := r.take(id)
	if c == nil {
		writeError(w, st, typ, "invalid request id "+strconv.Quote(id))
		return
	}
	resp := &runtime.Response{Type: runtime.TypeResult, ID: id, Error: e, MaxRSSKiB: r.maxRSSKiB()}
	c.logs.into(resp)
	r.send(resp)
	writeAccepted(w)
}

// initErrorPost is POST …/init/error: the runtime could not initialise.
// The relay answers Init with the error and ends, as a Python worker
// whose module failed to import.
func (r *Relay) initErrorPost(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	ready := r.ready
	r.mu.Unlock()
	if ready {
		writeError(w, http.StatusForbidden, errInvalidTransition, "the runtime's init is over")
		return
	}
	e, err := readError(req, r.resultLimit)
	if err != nil {
		writeError(w, http.StatusBadRequest, "TruncatedHTTPRequest", err.Error())
		return
	}
	r.initError(e)
	writeAccepted(w)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	r.initFailedOnce.Do(func() { close(r.initFailed) })
}

// lambdaError is the body of an error POST, in Lambda's format.
type lambdaError struct {
	ErrorMessage string          `json:"errorMessage"`
	ErrorType    string          `json:"errorType"`
	StackTrace   json.RawMessage `json:"stackTrace"`
}

// readError reads an error POST: Lambda's error JSON, with its type from
// the body or else the Lambda-Runtime-Function-Error-Type header; a body
// that is not that JSON is the message. Type, message and stack are capped
// as the engine caps every handler error.
func readError(req *http.Request, limit int) (*runtime.Error, error) {
	body, _, err := readLimited(req.Body, req.ContentLength, limit)
	if err != nil {
		return nil, err
	}
	var le lambdaError
	if json.Unmarshal(body, &le) != nil {
		le = lambdaError{ErrorMessage: strings.TrimSpace(string(body))}
	}
	typ := le.ErrorType
	if typ == "" {
		typ = req.Header.Get("Lambda-Runtime-Function-Error-Type")
	}
	if typ == "" {
		typ = "Unhandled"
	}
	ui := fn.UserError(typ, le.ErrorMessage, stackText(le.StackTrace))
	return &runtime.Error{Type: ui.Type, Message: ui.Message, Stack: ui.Stack}, nil
}

// stackText formats a stackTrace: lines of strings, aws-lambda-go's frames
// ({"path","line","label"}), or whatever JSON it is.
func stackText(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return string(raw)
	}
	lines := make([]string, 0, len(items))
	for _, it := range items {
		var line string
		var frame struct {
			Path  string `json:"path"`
			Line  int    `json:"line"`
			Label string `json:"label"`
		}
		switch {
		case json.Unmarshal(it, &line) == nil:
		case json.Unmarshal(it, &frame) == nil && frame.Path != "":
			line = fmt.Sprintf("%s:%d %s", frame.Path, frame.Line, frame.Label)
		default:
			line = string(it)
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

// maxDiscard bounds what is read and dropped of a response too large.
const maxDiscard = 64 << 20

// readLimited reads at most limit bytes of r, a body of size bytes (-1:
// unknown); over says there was more. A body known to be over is not read.
func readLimited(r io.Reader, size int64, limit int) (b []byte, over bool, err error) {
	if size > int64(limit) {
		return nil, true, nil
	}
	var buf bytes.Buffer
	if size > 0 {
		buf.Grow(int(size) + bytes.MinRead) // one allocation, no doubling
	}
	if _, err := buf.ReadFrom(io.LimitReader(r, int64(limit)+1)); err != nil {
		return nil, false, fmt.Errorf("read the request body: %w", err)
	}
	if buf.Len() > limit {
		return nil, true, nil
	}
	return buf.Bytes(), false, nil
}

// jsonResult is a response body as a result: JSON as it is, empty as null,
// anything else (Lambda passes any bytes back) as a JSON string.
func jsonResult(body []byte) json.RawMessage {
	body = bytes.TrimSpace(body)
	switch {
	case len(body) == 0:
		return json.RawMessage("null")
	case json.Valid(body):
		return json.RawMessage(body)
	}
	b, _ := json.Marshal(string(body))
	return b
}

func writeAccepted(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"OK"}`)
}

// writeError answers the runtime in Lambda's error format.
func writeError(w http.ResponseWriter, status int, typ, msg string) {
	b, _ := json.Marshal(map[string]string{"errorType": typ, "errorMessage": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// traceID is an X-Ray trace header for one call, as Lambda sends: a root
// id from the time and random bits, not sampled.
func traceID() string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("Root=1-%08x-%s;Parent=%s;Sampled=0", time.Now().Unix(), hex.EncodeToString(b[:12]), hex.EncodeToString(b[12:]))
}
