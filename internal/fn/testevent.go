package fn

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
)

// Limits of a function's saved test events.
const (
	MaxTestEvents       = 20
	MaxTestEventBytes   = 256 << 10 // one event's JSON
	MaxTestEventNameLen = 64
)

// TestEvent is an event saved with a function under a name, to invoke it
// with from the UI, as the Lambda console's test events. Test events
// belong to the function (its draft), not to what runs: a published
// version does not carry them and they are no part of its hash.
type TestEvent struct {
	Name  string          `json:"name"`
	Event json.RawMessage `json:"event"`
}

// normalizeTestEvents checks evs (names, sizes, valid JSON) and returns a
// copy with names trimmed and events compacted; nil for none.
func normalizeTestEvents(evs []TestEvent) ([]TestEvent, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	if len(evs) > MaxTestEvents {
		return nil, Invalid("testEvents", fmt.Sprintf("at most %d test events, not %d", MaxTestEvents, len(evs)))
	}
	out := make([]TestEvent, len(evs))
	seen := make(map[string]bool, len(evs))
	for i, e := range evs {
		name := strings.TrimSpace(e.Name)
		field := fmt.Sprintf("testEvents[%d].name", i)
		switch {
		case name == "":
			return nil, Invalid(field, fmt.Sprintf("test event %d has no name", i+1))
		case len(name) > MaxTestEventNameLen:
			return nil, Invalid(field, fmt.Sprintf("test event name %.20q… is longer than %d bytes", name, MaxTestEventNameLen))
		case strings.IndexFunc(name, unicode.IsControl) >= 0:
			return nil, Invalid(field, fmt.Sprintf("test event name %q has a control character", name))
		case seen[name]:
			return nil, Invalid(field, fmt.Sprintf("two test events are named %q", name))
		}
		seen[name] = true
		field = fmt.Sprintf("testEvents[%d].event", i)
		if len(bytes.TrimSpace(e.Event)) == 0 {
			return nil, Invalid(field, fmt.Sprintf("test event %q has no event", name))
		}
		if len(e.Event) > MaxTestEventBytes {
			return nil, Invalid(field, fmt.Sprintf("test event %q is %d bytes, more than %d", name, len(e.Event), MaxTestEventBytes))
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, e.Event); err != nil {
			return nil, Invalid(field, fmt.Sprintf("test event %q is not valid JSON: %v", name, err))
		}
		out[i] = TestEvent{Name: name, Event: json.RawMessage(buf.Bytes())}
	}
	return out, nil
}
