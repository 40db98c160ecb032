package fn

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// MaxSchedules is how many schedules one function may have.
const MaxSchedules = 20

// Schedule invokes its function asynchronously on a cron expression or
// at a fixed rate (package trigger/schedule).
type Schedule struct {
	// Name tells a function's schedules apart (unique within it).
	Name string `json:"name"`
	// Cron ("*/5 * * * *", seconds optional, "@hourly" macros) or Rate
	// ("5m"): one of the two.
	Cron string `json:"cron,omitempty"`
	Rate string `json:"rate,omitempty"`
	// Timezone is an IANA zone the cron expression is read in (UTC).
	Timezone string `json:"timezone,omitempty"`
	// Event is sent to the function, with the scheduled time added.
	Event json.RawMessage `json:"event,omitempty"`
	// Enabled: nil means true.
	Enabled *bool `json:"enabled,omitempty"`
	// CatchUp says what a server that was down does with ticks it missed:
	// "none" (the default; also JSON false) skips them, "latest" fires
	// the latest one once.
	CatchUp string `json:"catchUp,omitempty"`
	// NextRun is when the schedule fires next: shown, never stored.
	NextRun *time.Time `json:"nextRun,omitempty"`
}

// On reports whether the schedule is enabled.
func (s *Schedule) On() bool { return s.Enabled == nil || *s.Enabled }

// normalizeSchedules validates a function's schedules and returns a copy
// in canonical form.
func normalizeSchedules(in []Schedule) ([]Schedule, error) {
	if len(in) > MaxSchedules {
		return nil, Invalid("schedules", fmt.Sprintf("at most %d", MaxSchedules))
	}
	out := make([]Schedule, len(in))
	seen := map[string]bool{}
	for i, s := range in {
		s.Name = strings.TrimSpace(s.Name)
		field := fmt.Sprintf("schedules[%d]", i)
		if !nameRE.MatchString(s.Name) || len(s.Name) > MaxNameLen {
			return nil, Invalid(field+".name", fmt.Sprintf("%q is not a name (lower-case letters, digits and -)", s.Name))
		}
		if seen[s.Name] {
			return nil, Invalid(field+".name", fmt.Sprintf("%q is used twice", s.Name))
		}
		seen[s.Name] = true
		s.NextRun = nil
		out[i] = s
	}
	return out, nil
}
