package fn

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	// Time zones are checked and used from the zone database embedded in
	// the binary, so that a host without /usr/share/zoneinfo (a scratch
	// container) reads schedules as every other host does. It is imported
	// here, not in cmd/nimbus, because this package is what reads zones:
	// every binary and test that validates a function gets it.
	_ "time/tzdata"

	"github.com/robfig/cron/v3"
)

// Limits of a function's schedules.
const (
	// MaxSchedules is how many schedules one function may have.
	MaxSchedules = 20
	// MinScheduleRate and MaxScheduleRate bound a rate schedule.
	MinScheduleRate = time.Second
	MaxScheduleRate = 31 * 24 * time.Hour
	// MaxScheduleEventBytes bounds a schedule's event (Lambda's async
	// payload limit).
	MaxScheduleEventBytes = 256 << 10
)

// CatchUp says what happens to the ticks of a schedule that no server
// fired on time (all were down, or the schedule ran nowhere).
type CatchUp string

const (
	// CatchUpNone skips missed ticks (the default; JSON false too).
	CatchUpNone CatchUp = "none"
	// CatchUpLatest fires the latest missed tick, once.
	CatchUpLatest CatchUp = "latest"
)

// UnmarshalJSON takes "none", "latest" or false (the spelling of
// "none"). Other strings are kept for normalizeSchedules to reject with
// the field's name; true, which says nothing about which ticks, too.
func (c *CatchUp) UnmarshalJSON(b []byte) error {
	switch s := string(bytes.TrimSpace(b)); s {
	case "null":
		return nil
	case "false":
		*c = CatchUpNone
		return nil
	case "true":
		*c = "true"
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New(`catchUp must be "none", "latest" or false`)
	}
	*c = CatchUp(s)
	return nil
}

// Schedule invokes its function asynchronously on a cron expression or
// at a fixed rate (package trigger/schedule).
type Schedule struct {
	// Name tells a function's schedules apart (unique within it).
	Name string `json:"name"`
	// Cron ("*/5 * * * *", seconds optional, "@hourly" macros) or Rate
	// ("5m", whole seconds, ticking on multiples of the rate since the
	// Unix epoch): one of the two.
	Cron string `json:"cron,omitempty"`
	Rate string `json:"rate,omitempty"`
	// Timezone is an IANA zone the cron expression is read in (UTC).
	// A rate ignores it.
	Timezone string `json:"timezone,omitempty"`
	// Event is the detail of the scheduled event sent to the function: a
	// JSON object, {} when unset.
	Event json.RawMessage `json:"event,omitempty"`
	// Enabled: nil means true.
	Enabled *bool `json:"enabled,omitempty"`
	// CatchUp says what a server that was down does with ticks it missed:
	// CatchUpNone (the default) skips them, CatchUpLatest fires the latest
	// one once.
	CatchUp CatchUp `json:"catchUp,omitempty"`
	// Qualifier says what a tick runs: "" (the draft), $LATEST, a version
	// number or an alias, resolved when the call runs.
	Qualifier string `json:"qualifier,omitempty"`
	// NextRun is when the schedule fires next: shown, never stored.
	NextRun *time.Time `json:"nextRun,omitempty"`
}

// On reports whether the schedule is enabled.
func (s *Schedule) On() bool { return s.Enabled == nil || *s.Enabled }

// cronParser reads 5 fields (minute first) or 6 (second first) and the
// "@hourly" macros.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Next is the schedule's first tick strictly after after, in the
// schedule's zone (UTC for a rate). A cron ticks in its zone's wall
// time; a rate on the multiples of it since the Unix epoch, so that every
// server computes the same ticks. It fails if the schedule is invalid or
// never fires again.
func (s *Schedule) Next(after time.Time) (time.Time, error) {
	if s.Rate != "" {
		r, err := s.rate()
		if err != nil {
			return time.Time{}, err
		}
		step := int64(r / time.Second)
		sec := after.Unix()
		k := sec / step
		if sec < 0 && sec%step != 0 {
			k-- // floor, for times before the epoch
		}
		return time.Unix((k+1)*step, 0).UTC(), nil
	}
	loc, err := s.location()
	if err != nil {
		return time.Time{}, err
	}
	spec, err := s.cron()
	if err != nil {
		return time.Time{}, err
	}
	// A spec without CRON_TZ reads its fields in the zone of the time it
	// is given. A wall time that comes twice as the clocks fall back fires
	// once, as in cron, unless the hour field is "*": then every hour that
	// passes has its ticks.
	next := spec.Next(after.In(loc))
	if ss, ok := spec.(*cron.SpecSchedule); ok && ss.Hour&starBit == 0 {
		for i := 0; i < 24*60*60 && !next.IsZero() && repeatedWallTime(next); i++ {
			next = spec.Next(next)
		}
	}
	if next.IsZero() {
		return time.Time{}, fmt.Errorf("schedule %s: %w: %q never fires after %s", s.Name, ErrInvalid, s.Cron, after.Format(time.RFC3339))
	}
	return next, nil
}

// starBit marks a cron field written "*" (robfig/cron's own mark).
const starBit = 1 << 63

// repeatedWallTime reports whether t's wall time came once already, an
// offset earlier, because the clocks fell back shortly before t.
func repeatedWallTime(t time.Time) bool {
	_, off := t.Zone()
	_, before := t.Add(-12 * time.Hour).Zone()
	if before <= off {
		return false
	}
	_, first := t.Add(-time.Duration(before-off) * time.Second).Zone()
	return first == before
}

func (s *Schedule) rate() (time.Duration, error) {
	r, err := time.ParseDuration(s.Rate)
	switch {
	case err != nil || r < MinScheduleRate || r > MaxScheduleRate:
		return 0, Invalid("rate", fmt.Sprintf("must be a duration between %s and %s, like \"5m\"", MinScheduleRate, MaxScheduleRate))
	case r%time.Second != 0:
		return 0, Invalid("rate", "must be a whole number of seconds")
	}
	return r, nil
}

func (s *Schedule) cron() (cron.Schedule, error) {
	c := s.Cron
	if strings.HasPrefix(c, "TZ=") || strings.HasPrefix(c, "CRON_TZ=") {
		return nil, Invalid("cron", `give the zone in "timezone", not in the expression`)
	}
	if strings.HasPrefix(c, "@every") {
		return nil, Invalid("cron", `use "rate" for a fixed interval, not @every`)
	}
	spec, err := cronParser.Parse(c)
	if err != nil {
		return nil, Invalid("cron", fmt.Sprintf("%q is not a cron expression (5 or 6 fields, or a macro like @hourly): %v", c, err))
	}
	return spec, nil
}

func (s *Schedule) location() (*time.Location, error) {
	if s.Timezone == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(s.Timezone)
	// LoadLocation also takes "Local", which depends on the host.
	if err != nil || s.Timezone == "Local" {
		return nil, Invalid("timezone", fmt.Sprintf("%q is not an IANA time zone (like \"Europe/Paris\")", s.Timezone))
	}
	return loc, nil
}

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
		if err := CheckQualifier(field+".qualifier", s.Qualifier); err != nil {
			return nil, err
		}
		if err := s.normalize(); err != nil {
			var fe *FieldError
			if errors.As(err, &fe) {
				return nil, Invalid(field+"."+fe.Field, fe.Message)
			}
			return nil, Invalid(field, err.Error())
		}
		if s.Enabled != nil {
			on := *s.Enabled // a copy: in may be shared
			s.Enabled = &on
		}
		s.NextRun = nil
		out[i] = s
	}
	return out, nil
}

// normalize validates one schedule; errors name fields relative to it.
func (s *Schedule) normalize() error {
	s.Cron = strings.Join(strings.Fields(s.Cron), " ")
	s.Rate = strings.TrimSpace(s.Rate)
	s.Timezone = strings.TrimSpace(s.Timezone)
	if (s.Cron == "") == (s.Rate == "") {
		return Invalid("cron", `give one of "cron" or "rate"`)
	}
	if _, err := s.location(); err != nil {
		return err
	}
	if s.Rate != "" {
		if _, err := s.rate(); err != nil {
			return err
		}
	} else {
		if _, err := s.cron(); err != nil {
			return err
		}
		// A valid expression may match no date ("0 0 30 2 *").
		if _, err := s.Next(time.Now()); err != nil {
			return Invalid("cron", fmt.Sprintf("%q never fires", s.Cron))
		}
	}
	switch c := CatchUp(strings.ToLower(strings.TrimSpace(string(s.CatchUp)))); c {
	case "", CatchUpNone, CatchUpLatest:
		s.CatchUp = c
	default:
		return Invalid("catchUp", fmt.Sprintf(`%q: must be "none", "latest" or false`, string(s.CatchUp)))
	}
	if t := bytes.TrimSpace(s.Event); len(t) == 0 || string(t) == "null" {
		s.Event = nil
	} else {
		if len(t) > MaxScheduleEventBytes {
			return Invalid("event", fmt.Sprintf("must be at most %d KiB", MaxScheduleEventBytes>>10))
		}
		var obj map[string]json.RawMessage
		if t[0] != '{' || json.Unmarshal(t, &obj) != nil {
			return Invalid("event", "must be a JSON object")
		}
		var b bytes.Buffer
		if err := json.Compact(&b, t); err != nil {
			return Invalid("event", "must be a JSON object")
		}
		s.Event = b.Bytes()
	}
	return nil
}
