package metrics

import "time"

// SetClock replaces h's clock and takes a new first reading.
func (h *Host) SetClock(now func() time.Time) {
	h.now = now
	h.base, _ = h.cpu()
}
