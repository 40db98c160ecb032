package runtime

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Frames are a 4-byte big-endian length followed by that many bytes of JSON.
// The server writes Init once, then Requests; the worker answers Init with a
// Response of type "ready" and each Request with one of type "result".
//
// A Request with StreamLogs set may also be answered, before its result,
// with Responses of type "log" ({"type":"log","id":…,"data":…}): what the
// handler has printed so far, in order, sent as it is printed (at each
// newline, or when a line grows long). They are optional: a worker that
// never sends them, or ignores StreamLogs, is served as well, and the
// result still carries the call's whole (capped) logs. The server reads log
// frames only for calls in flight; it ignores others.

// Message types.
const (
	TypeInit   = "init"
	TypeInvoke = "invoke"
	TypeReady  = "ready"
	TypeResult = "result"
	TypeLog    = "log"
)

// Limits the shims and the server agree on.
const (
	DefaultLogLimit    = 64 << 10 // bytes of logs kept per invocation
	MaxLogTimes        = 2000     // lines of an invocation's logs given a time
	DefaultResultLimit = 6 << 20  // bytes of JSON result, as Lambda
	// MaxResponseFrame bounds what the server reads from a worker: a result
	// at the limit plus logs and envelope. A larger frame kills the worker.
	MaxResponseFrame = DefaultResultLimit + 4*DefaultLogLimit + 64<<10
)

// Init tells a worker which function it serves. It is the first frame.
type Init struct {
	Type            string `json:"type"`
	Handler         string `json:"handler"` // "main.handler", "lib/index.handler"
	TaskDir         string `json:"taskDir"` // directory holding the function's files
	FunctionName    string `json:"functionName"`
	FunctionVersion string `json:"functionVersion"`
	MemoryMB        int    `json:"memoryLimitInMB"`
	LogLimit        int    `json:"logLimit"`    // bytes; 0 means DefaultLogLimit
	ResultLimit     int    `json:"resultLimit"` // bytes; 0 means DefaultResultLimit
	// Env is set in the worker's environment before the handler is loaded,
	// on top of what the worker was started with. A driver that starts
	// workers before it knows their function (a pool of generic containers)
	// passes the function's environment here.
	Env map[string]string `json:"env,omitempty"`
	// Concurrency is how many invocations the worker runs at once (1 when
	// 0); over it, requests wait in the worker in order of arrival.
	Concurrency int `json:"concurrency,omitempty"`
	// Layers are the function's layer directories as the worker sees
	// them ("/opt/layers/0", …), in Lambda's layout. For each, in order,
	// after the task directory: the Python shim adds <l>/python and every
	// <l>/python/lib/python3.*/site-packages to sys.path (site.addsitedir:
	// .pth files work); the Node shim adds <l>/nodejs/node<major>/node_modules
	// and <l>/nodejs/node_modules to NODE_PATH.
	Layers []string `json:"layers,omitempty"`
}

// Request asks a worker to run the handler once.
type Request struct {
	Type       string          `json:"type"`
	ID         string          `json:"id"` // request id, the execution id
	Event      json.RawMessage `json:"event"`
	DeadlineMs int64           `json:"deadlineMs"` // Unix epoch milliseconds
	// ClientContext is what the caller said of itself (Lambda's Invoke
	// X-Amz-Client-Context, decoded: a JSON object with "client",
	// "custom" and "env"); the shims hand it to the handler as
	// context.client_context (Python) or context.clientContext (Node).
	ClientContext json.RawMessage `json:"clientContext,omitempty"`
	// StreamLogs asks the worker to send what the handler prints as log
	// frames while the call runs, as well as in the result.
	StreamLogs bool `json:"streamLogs,omitempty"`
	// FunctionARN is the ARN the call was made with, when a front end
	// knows it; the Runtime API relay passes it to the bootstrap
	// (Lambda-Runtime-Invoked-Function-Arn), as it passes ClientContext
	// (Lambda-Runtime-Client-Context).
	FunctionARN string `json:"functionArn,omitempty"`
}

// Error is a structured handler or runtime error.
type Error struct {
	Type    string `json:"type"`
	Message string `json:"message"`
	Stack   string `json:"stack,omitempty"`
}

func (e *Error) Error() string { return e.Type + ": " + e.Message }

// Response is a worker's answer: to Init ("ready", with Error set when the
// handler could not be loaded) or to a Request ("result"); or, for a
// Request with StreamLogs, a "log" frame with Data, a part of its logs.
type Response struct {
	Type          string          `json:"type"`
	ID            string          `json:"id,omitempty"`
	Result        json.RawMessage `json:"result,omitempty"`
	Error         *Error          `json:"error,omitempty"`
	Logs          string          `json:"logs,omitempty"`
	LogsTruncated bool            `json:"logsTruncated,omitempty"`
	// LogTimes say when each line of Logs began, in milliseconds since
	// the worker began the call (the first MaxLogTimes lines at most);
	// absent from a worker that does not tell.
	LogTimes []int `json:"logTimes,omitempty"`
	// MaxRSSKiB is the worker's peak resident set size so far, in KiB, as
	// the process itself reports it (getrusage ru_maxrss, Node's
	// resourceUsage().maxRSS); 0 when the shim does not say.
	MaxRSSKiB int64 `json:"maxRssKiB,omitempty"`
	// Data is what a "log" frame carries: output of the call ID, in order.
	Data string `json:"data,omitempty"`
}

// ErrFrameTooLarge is returned by ReadFrame for a frame over its limit.
var ErrFrameTooLarge = errors.New("frame too large")

// WriteFrame marshals v and writes it as one frame.
func WriteFrame(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode frame: %w", err)
	}
	return WriteRaw(w, b)
}

// WriteRaw writes b as one frame in a single Write call.
func WriteRaw(w io.Writer, b []byte) error {
	buf := make([]byte, 4+len(b))
	binary.BigEndian.PutUint32(buf, uint32(len(b)))
	copy(buf[4:], b)
	_, err := w.Write(buf)
	return err
}

// ReadFrame reads one frame of at most max bytes.
func ReadFrame(r io.Reader, max int) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if int64(n) > int64(max) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, max)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, nil
}
