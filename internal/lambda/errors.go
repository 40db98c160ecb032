package lambda

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// awsError is an error as Lambda sends it: its type (the X-Amzn-ErrorType
// header and the SDK's error class), HTTP status and whose fault it is.
type awsError struct {
	Type    string
	Status  int
	Message string
	Service bool // "Service" (the server's fault), else "User"
	// RetryAfter, when set, is sent as Retry-After (in whole seconds).
	RetryAfter time.Duration
}

func (e *awsError) Error() string { return e.Type + ": " + e.Message }

// said is an error of the domain (its sentinel) in Lambda's words:
// writeError maps it by the sentinel and shows only the words.
type said struct {
	msg      string
	sentinel error
}

func (e *said) Error() string { return e.msg }
func (e *said) Unwrap() error { return e.sentinel }

// notFound says, in Lambda's words, that what a request names does not
// exist.
func notFound(what, arn string) error { return &said{what + " not found: " + arn, fn.ErrNotFound} }

func conflict(msg string) error         { return &said{msg, fn.ErrConflict} }
func invalidParameter(msg string) error { return &said{msg, fn.ErrInvalid} }
func tooLarge(msg string) error         { return &said{msg, fn.ErrTooLarge} }

// invalidContent is a body or header that is not what Lambda takes: an
// error of the protocol, with no domain sentinel.
func invalidContent(msg string) error {
	return &awsError{Type: "InvalidRequestContentException", Status: http.StatusBadRequest, Message: msg}
}

// errorBody is Lambda's error JSON. The SDK reads "Message" for some
// errors (ResourceNotFoundException, ServiceException) and "message" for
// the others: both are sent.
type errorBody struct {
	Type     string `json:"Type"`
	Message  string `json:"Message"`
	Message2 string `json:"message"`
	Reason   string `json:"Reason,omitempty"`
}

// writeError maps an error to Lambda's status, type and body: the one
// place that does.
func writeError(w http.ResponseWriter, err error) {
	var (
		ae     *awsError
		tooBig *http.MaxBytesError
		reason string
	)
	switch {
	case errors.As(err, &ae):
		if ae.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int(ae.RetryAfter.Seconds()+0.999))))
		}
	case errors.As(err, &tooBig) || errors.Is(err, fn.ErrTooLarge):
		ae = &awsError{Type: "RequestTooLargeException", Status: http.StatusRequestEntityTooLarge, Message: err.Error()}
	case errors.Is(err, fn.ErrNotFound):
		ae = &awsError{Type: "ResourceNotFoundException", Status: http.StatusNotFound, Message: err.Error()}
	case errors.Is(err, fn.ErrInvalid), errors.Is(err, fn.ErrBuildFailed):
		ae = &awsError{Type: "InvalidParameterValueException", Status: http.StatusBadRequest, Message: err.Error()}
	case errors.Is(err, fn.ErrPrecondition):
		ae = &awsError{Type: "PreconditionFailedException", Status: http.StatusPreconditionFailed, Message: err.Error()}
	case errors.Is(err, fn.ErrConflict):
		ae = &awsError{Type: "ResourceConflictException", Status: http.StatusConflict, Message: err.Error()}
	case errors.Is(err, fn.ErrCapacity):
		ae = &awsError{Type: "TooManyRequestsException", Status: http.StatusTooManyRequests, Message: err.Error()}
		reason = "ConcurrentInvocationLimitExceeded"
		w.Header().Set("Retry-After", "1")
	default: // fn.ErrUnavailable and the server's own trouble
		ae = &awsError{Type: "ServiceException", Status: http.StatusInternalServerError, Message: fn.ScrubPaths(err.Error()), Service: true}
	}
	typ := "User"
	if ae.Service {
		typ = "Service"
	}
	h := w.Header()
	h.Set("X-Amzn-ErrorType", ae.Type)
	h.Set("Content-Type", "application/json")
	w.WriteHeader(ae.Status)
	_ = json.NewEncoder(w).Encode(errorBody{Type: typ, Message: ae.Message, Message2: ae.Message, Reason: reason})
}

// WriteForbidden answers a request refused before it reached the
// Handler (another site's Host or Origin) in Lambda's error shape.
func WriteForbidden(w http.ResponseWriter, err error) {
	writeError(w, &awsError{Type: "AccessDeniedException", Status: http.StatusForbidden, Message: err.Error()})
}
