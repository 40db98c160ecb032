package fn

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Triggers of executions other than TriggerHTTP: how the call came in.
const (
	TriggerAsync       = "async"       // POST /api/executions with the Event invocation type
	TriggerSchedule    = "schedule"    // a function's schedule fired
	TriggerDestination = "destination" // another function's async result was sent here
	TriggerReplay      = "replay"      // a recorded execution's event run again
)

// Statuses of an async call before it ends; they are never final.
const (
	StatusQueued  Status = "queued"  // accepted and stored in the queue
	StatusRunning Status = "running" // an attempt has started
)

// Final reports whether s is how an execution ended, not a stage on the
// way (queued, running).
func (s Status) Final() bool { return s != StatusQueued && s != StatusRunning }

// Limits and defaults of a function's async settings (Lambda's).
const (
	DefaultAsyncRetries     = 2
	MaxAsyncRetries         = 2
	MinEventAgeSeconds      = 60
	MaxEventAgeSeconds      = 6 * 60 * 60
	DefaultRetryBackoff     = time.Minute
	MinRetryBackoff         = 100 * time.Millisecond
	MaxRetryBackoff         = time.Hour
	MaxDestinationURLLength = 2048
)

// AsyncConfig is how a function's async calls are retried and where
// their outcome goes. A nil AsyncConfig means all defaults.
type AsyncConfig struct {
	// MaxRetries is how many times a failed call is tried again (0-2,
	// default 2): nil means the default.
	MaxRetries *int `json:"maxRetries,omitempty"`
	// MaxEventAgeSeconds is how long a call may wait, retries included,
	// before it goes to the dead letters unrun (60-21600, default 21600).
	MaxEventAgeSeconds int `json:"maxEventAgeSeconds,omitempty"`
	// RetryBackoff is the wait before the first retry, doubled for each
	// one after it: a Go duration ("30s"), default "1m".
	RetryBackoff string `json:"retryBackoff,omitempty"`
	// OnSuccess and OnFailure receive a destination record of each call
	// that succeeded, or failed for the last time.
	OnSuccess *Destination `json:"onSuccess,omitempty"`
	OnFailure *Destination `json:"onFailure,omitempty"`
}

// Destination is where an async call's outcome is sent: another function
// (queued as an async call to it) or an HTTP(S) URL (POSTed to). One of the
// two.
type Destination struct {
	Function string `json:"function,omitempty"`
	URL      string `json:"url,omitempty"`
}

// Retries is the number of retries after a failed first attempt.
func (a *AsyncConfig) Retries() int {
	if a == nil || a.MaxRetries == nil {
		return DefaultAsyncRetries
	}
	return *a.MaxRetries
}

// MaxAge is how long an event may wait before it is given up.
func (a *AsyncConfig) MaxAge() time.Duration {
	if a == nil || a.MaxEventAgeSeconds == 0 {
		return MaxEventAgeSeconds * time.Second
	}
	return time.Duration(a.MaxEventAgeSeconds) * time.Second
}

// Backoff is the wait before retry n (1 for the first retry).
func (a *AsyncConfig) Backoff(n int) time.Duration {
	d := DefaultRetryBackoff
	if a != nil && a.RetryBackoff != "" {
		if v, err := time.ParseDuration(a.RetryBackoff); err == nil {
			d = v
		}
	}
	for ; n > 1 && d < MaxRetryBackoff; n-- {
		d *= 2
	}
	return min(d, MaxRetryBackoff)
}

// clone returns a deep copy of a.
func (a *AsyncConfig) clone() *AsyncConfig {
	c := *a
	if a.MaxRetries != nil {
		n := *a.MaxRetries
		c.MaxRetries = &n
	}
	if a.OnSuccess != nil {
		d := *a.OnSuccess
		c.OnSuccess = &d
	}
	if a.OnFailure != nil {
		d := *a.OnFailure
		c.OnFailure = &d
	}
	return &c
}

// normalize validates a; it leaves defaults unset, so that what is
// stored is what was asked for.
func (a *AsyncConfig) normalize() error {
	if n := a.MaxRetries; n != nil && (*n < 0 || *n > MaxAsyncRetries) {
		return Invalid("async.maxRetries", fmt.Sprintf("must be between 0 and %d", MaxAsyncRetries))
	}
	if s := a.MaxEventAgeSeconds; s != 0 && (s < MinEventAgeSeconds || s > MaxEventAgeSeconds) {
		return Invalid("async.maxEventAgeSeconds", fmt.Sprintf("must be between %d and %d", MinEventAgeSeconds, MaxEventAgeSeconds))
	}
	if a.RetryBackoff = strings.TrimSpace(a.RetryBackoff); a.RetryBackoff != "" {
		d, err := time.ParseDuration(a.RetryBackoff)
		if err != nil || d < MinRetryBackoff || d > MaxRetryBackoff {
			return Invalid("async.retryBackoff", fmt.Sprintf("must be a duration between %s and %s, like \"30s\"", MinRetryBackoff, MaxRetryBackoff))
		}
	}
	for _, d := range []struct {
		field string
		dest  *Destination
	}{{"async.onSuccess", a.OnSuccess}, {"async.onFailure", a.OnFailure}} {
		if d.dest != nil {
			if err := d.dest.normalize(d.field); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *Destination) normalize(field string) error {
	d.Function, d.URL = strings.TrimSpace(d.Function), strings.TrimSpace(d.URL)
	switch {
	case (d.Function == "") == (d.URL == ""):
		return Invalid(field, `needs one of "function" or "url"`)
	case d.Function != "":
		name, q := ParseQualifier(d.Function)
		if !nameRE.MatchString(name) || len(name) > MaxNameLen {
			return Invalid(field+".function", fmt.Sprintf("%q is not a function name (name or name:qualifier)", d.Function))
		}
		if err := CheckQualifier(field+".function", q); err != nil {
			return err
		}
	default:
		u, err := url.Parse(d.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(d.URL) > MaxDestinationURLLength {
			return Invalid(field+".url", "must be an http:// or https:// URL")
		}
	}
	return nil
}

// OnSuccessDest is where successes go, nil for nowhere.
func (a *AsyncConfig) OnSuccessDest() *Destination {
	if a == nil {
		return nil
	}
	return a.OnSuccess
}

// OnFailureDest is where final failures go, nil for nowhere.
func (a *AsyncConfig) OnFailureDest() *Destination {
	if a == nil {
		return nil
	}
	return a.OnFailure
}
