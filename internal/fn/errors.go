package fn

import "errors"

// Sentinel errors. Callers wrap them with %w and a short prefix; the API
// maps them to HTTP statuses in exactly one place.
var (
	ErrNotFound    = errors.New("not found")
	ErrConflict    = errors.New("conflict")
	ErrInvalid     = errors.New("invalid")
	ErrTooLarge    = errors.New("too large")
	ErrCapacity    = errors.New("over capacity")
	ErrUnavailable = errors.New("unavailable")
	// ErrBuildFailed: the dependencies of code sent could not be built,
	// so the change did not take.
	ErrBuildFailed = errors.New("build failed")
	// ErrPrecondition: a conditional change (If-Match, expectedHash) met
	// a state that has moved on.
	ErrPrecondition = errors.New("precondition failed")
)

// FieldError is an ErrInvalid that names the offending field.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Invalid returns a FieldError for field.
func Invalid(field, msg string) error { return &FieldError{Field: field, Message: msg} }
