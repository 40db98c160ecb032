package schedule

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// Event is the scheduled event a function receives: EventBridge's shape,
// so that Lambda handlers written for scheduled rules work unchanged.
type Event struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Time       string          `json:"time"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

// Source is the Event's source.
const Source = "nimbus.schedule"

// scheduledEvent is the event of tick. Its id is derived from the tick's
// dedup key: the same on every server and every retry, unique per tick.
func scheduledEvent(f *fn.Function, sc *fn.Schedule, tick time.Time, dedupKey string) json.RawMessage {
	detail := sc.Event
	if len(detail) == 0 || !json.Valid(detail) { // Normalize refuses the latter
		detail = json.RawMessage(`{}`)
	}
	b, err := json.Marshal(Event{
		Version:    "0",
		ID:         tickID(dedupKey),
		DetailType: "Scheduled Event",
		Source:     Source,
		Time:       tick.UTC().Format(time.RFC3339),
		Resources:  []string{f.Name + "/" + sc.Name},
		Detail:     detail,
	})
	if err != nil {
		panic(err) // strings and valid JSON only
	}
	return b
}

// tickID is a UUID (version 5 layout) made from key.
func tickID(key string) string {
	h := sha256.Sum256([]byte(key))
	h[6] = h[6]&0x0f | 0x50
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}
