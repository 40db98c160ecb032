package fn

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Status is how an execution ended. A status is always recorded.
type Status string

const (
	StatusSuccess  Status = "success"  // the handler returned
	StatusError    Status = "error"    // the handler raised, or its result was unusable
	StatusTimeout  Status = "timeout"  // it overran its timeout and was killed
	StatusOOM      Status = "oom"      // it was killed for exceeding its memory
	StatusCrashed  Status = "crashed"  // the worker died under it
	StatusRejected Status = "rejected" // it never ran (over capacity, driver unavailable)
)

// Statuses lists every status, in display order.
var Statuses = []Status{StatusSuccess, StatusError, StatusTimeout, StatusOOM, StatusCrashed, StatusRejected}

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	for _, v := range Statuses {
		if s == v {
			return true
		}
	}
	return false
}

// ErrorInfo describes why an execution did not succeed.
type ErrorInfo struct {
	Type    string `json:"type"`
	Message string `json:"message"`
	Stack   string `json:"stack,omitempty"`
}

// What an error from user code may hold: its type is kept in every metrics
// bucket it falls in, and all three in its record.
const (
	MaxErrorType    = 256
	MaxErrorMessage = 4 << 10
	MaxErrorStack   = 16 << 10
)

// UserError is the ErrorInfo of an error that user code raised, each part
// cut to its limit.
func UserError(typ, message, stack string) *ErrorInfo {
	return &ErrorInfo{Type: Truncate(typ, MaxErrorType), Message: Truncate(message, MaxErrorMessage), Stack: Truncate(stack, MaxErrorStack)}
}

// Truncate cuts s to at most max bytes, at a character boundary, marking
// the cut with "…".
func Truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const mark = "…"
	cut := max - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// Execution is the record of one invocation.
type Execution struct {
	ID         string          `json:"executionId"`
	FunctionID string          `json:"functionId"`
	Version    int             `json:"version"`
	Status     Status          `json:"status"`
	Event      json.RawMessage `json:"event,omitempty"`
	Result     json.RawMessage `json:"result,omitempty"`
	Error      *ErrorInfo      `json:"error,omitempty"`
	Logs       string          `json:"logs"`
	// LogTimes say when each line of Logs began, in milliseconds since
	// the call began (StartedAt), for the first lines (2,000 at most); nil
	// when the worker does not tell (the provided runtime's relay).
	LogTimes   []int     `json:"logTimes,omitempty"`
	StartedAt  time.Time `json:"startedAt"`
	DurationMs float64   `json:"durationMs"`
	ColdStart  bool      `json:"coldStart"`
	// InitMs is the cold-start time (instance start and handler load), 0 when warm.
	InitMs float64 `json:"initDurationMs,omitempty"`
	// QueueMs is how long the call waited for an instance.
	QueueMs float64 `json:"queueMs,omitempty"`
	// Trigger is the way the call came in: TriggerHTTP for a function
	// URL, TriggerAsync, TriggerSchedule or TriggerDestination for an
	// async call, "" for a call through POST /api/executions.
	Trigger string `json:"trigger,omitempty"`
	// Attempt numbers the tries of an async call (1 for the first); 0
	// for a call that was not async.
	Attempt int `json:"attempt,omitempty"`
	// PeakMemoryKiB is the worker's peak resident memory up to the end of
	// this call, KiB; 0 when unknown (the call never reached a worker).
	PeakMemoryKiB int64 `json:"peakMemoryKiB,omitempty"`
}

var lastID atomic.Int64

// NewID returns an IDLen-hex-digit identifier whose lexical order is its order of
// creation in this process: 8 bytes of strictly increasing Unix nanoseconds
// and 4 random bytes.
func NewID() string {
	now := time.Now().UnixNano()
	for {
		last := lastID.Load()
		if now <= last {
			now = last + 1
		}
		if lastID.CompareAndSwap(last, now) {
			break
		}
	}
	var b [12]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now))
	_, _ = rand.Read(b[8:])
	return hex.EncodeToString(b[:])
}

// IDLen is the length of the ids NewID makes.
const IDLen = 24

// LooksLikeID reports whether s has the shape of an id NewID makes: 24
// lowercase hexadecimal digits. No name has it, so that a name can never
// be taken for another function's id.
func LooksLikeID(s string) bool {
	if len(s) != IDLen {
		return false
	}
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// VersionName is the version the execution ran: "$LATEST" (the draft)
// or a published version's number.
func (e *Execution) VersionName() string {
	if e.Version == 0 {
		return Latest
	}
	return strconv.Itoa(e.Version)
}
