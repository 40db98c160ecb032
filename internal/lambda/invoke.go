package lambda

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/nimbusfaas/nimbus/internal/engine"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/trigger/async"
)

// Limits of Invoke (Lambda's).
const (
	maxClientContext = 3583 // bytes of X-Amz-Client-Context, base64
	tailBytes        = 4096 // bytes of logs in X-Amz-Log-Result
)

// invoke serves Invoke: RequestResponse runs the call and answers its
// result (a handler's error as 200 with X-Amz-Function-Error); Event
// queues it (202); DryRun only checks that it could run (204).
func (h *Handler) invoke(w http.ResponseWriter, r *http.Request) {
	name, qualifier, err := h.target(r)
	if err != nil {
		writeError(w, err)
		return
	}
	event := body(r)
	if len(event) == 0 {
		event = []byte("{}")
	} else if !json.Valid(event) {
		writeError(w, invalidContent("Could not parse request body into json: the payload must be JSON"))
		return
	}
	cc, err := clientContext(r.Header.Get("X-Amz-Client-Context"))
	if err != nil {
		writeError(w, err)
		return
	}
	f, err := h.cfg.Functions.ResolveQualified(r.Context(), name, qualifier)
	if err != nil {
		writeError(w, h.orNotFound(err, name, qualifier))
		return
	}
	switch typ := r.Header.Get("X-Amz-Invocation-Type"); typ {
	case "", "RequestResponse":
	case "Event":
		h.invokeEvent(w, r, f, qualifier, event)
		return
	case "DryRun":
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		writeError(w, invalidParameter(fmt.Sprintf("InvocationType %q: use RequestResponse, Event or DryRun", typ)))
		return
	}
	tail := false
	switch lt := r.Header.Get("X-Amz-Log-Type"); lt {
	case "", "None":
	case "Tail":
		tail = true
	default:
		writeError(w, invalidParameter(fmt.Sprintf("LogType %q: use None or Tail", lt)))
		return
	}
	ex, err := h.cfg.Engine.InvokeCall(r.Context(), f, engine.Call{Event: event, ClientContext: cc})
	if err != nil {
		writeError(w, h.orNotFound(err, name, qualifier)) // it never ran
		return
	}
	hd := w.Header()
	hd.Set("X-Amzn-RequestId", ex.ID)
	hd.Set("X-Amz-Executed-Version", ex.VersionName())
	if tail {
		hd.Set("X-Amz-Log-Result", logTail(ex))
	}
	hd.Set("Content-Type", "application/json")
	if ex.Status == fn.StatusSuccess {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(ex.Result)
		return
	}
	// The handler failed, timed out, ran out of memory or crashed: Lambda
	// answers 200 with the error as the payload.
	hd.Set("X-Amz-Function-Error", "Unhandled")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(functionError(ex))
}

// invokeEvent queues an Event invocation.
func (h *Handler) invokeEvent(w http.ResponseWriter, r *http.Request, f *fn.Function, qualifier string, event []byte) {
	if h.cfg.Queue == nil {
		writeError(w, fmt.Errorf("Event invocations are not available on this server: %w", fn.ErrUnavailable))
		return
	}
	a, err := h.cfg.Queue.Enqueue(r.Context(), f, async.Call{Event: event, Qualifier: qualifier})
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("X-Amzn-RequestId", a.ExecutionID)
	w.WriteHeader(http.StatusAccepted)
}

// clientContext decodes X-Amz-Client-Context: base64 of a JSON object.
func clientContext(h string) (json.RawMessage, error) {
	if h == "" {
		return nil, nil
	}
	if len(h) > maxClientContext {
		return nil, invalidParameter(fmt.Sprintf("ClientContext is %d bytes of base64, more than %d", len(h), maxClientContext))
	}
	b, err := base64.StdEncoding.DecodeString(h)
	if err != nil || !json.Valid(b) || !strings.HasPrefix(strings.TrimSpace(string(b)), "{") {
		return nil, invalidContent("Client context must be a valid Base64-encoded JSON object.")
	}
	return b, nil
}

// invokeError is Lambda's payload of a failed call.
type invokeError struct {
	ErrorMessage string   `json:"errorMessage"`
	ErrorType    string   `json:"errorType"`
	StackTrace   []string `json:"stackTrace,omitempty"`
}

func functionError(ex *fn.Execution) invokeError {
	e := invokeError{ErrorType: "Runtime.Unknown", ErrorMessage: "the call failed: " + string(ex.Status)}
	if ex.Error != nil {
		e.ErrorType, e.ErrorMessage = ex.Error.Type, ex.Error.Message
		if s := strings.TrimRight(ex.Error.Stack, "\n"); s != "" {
			e.StackTrace = strings.Split(s, "\n")
		}
	}
	return e
}

// logTail is X-Amz-Log-Result: the last 4 KB of the call's log, framed
// by Lambda's START, END and REPORT lines, base64.
func logTail(ex *fn.Execution) string {
	var b strings.Builder
	fmt.Fprintf(&b, "START RequestId: %s Version: %s\n", ex.ID, ex.VersionName())
	b.WriteString(ex.Logs)
	if ex.Logs != "" && !strings.HasSuffix(ex.Logs, "\n") {
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "END RequestId: %s\n", ex.ID)
	fmt.Fprintf(&b, "REPORT RequestId: %s\tDuration: %s ms", ex.ID, strconv.FormatFloat(ex.DurationMs, 'f', 2, 64))
	if ex.ColdStart {
		fmt.Fprintf(&b, "\tInit Duration: %s ms", strconv.FormatFloat(ex.InitMs, 'f', 2, 64))
	}
	if ex.PeakMemoryKiB > 0 {
		fmt.Fprintf(&b, "\tMax Memory Used: %d MB", (ex.PeakMemoryKiB+1023)/1024)
	}
	b.WriteByte('\n')
	s := b.String()
	if len(s) > tailBytes {
		s = s[len(s)-tailBytes:]
	}
	return base64.StdEncoding.EncodeToString([]byte(s))
}
