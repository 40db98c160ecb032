package autoscale_test

import (
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/autoscale"
)

func TestWindowsWarm(t *testing.T) {
	const m = time.Minute
	keep := autoscale.Windows{KeepAlive: 10 * m}
	pre := autoscale.Windows{Prewarm: 5 * m, KeepAlive: 2 * m}
	for _, tc := range []struct {
		name string
		w    autoscale.Windows
		d    time.Duration
		want bool
	}{
		{"keep: at the idle start", keep, 0, true},
		{"keep: just before the end", keep, 10*m - 1, true},
		{"keep: at the end", keep, 10 * m, false},
		{"keep: negative idle counts as 0", keep, -time.Second, true},
		{"prewarm: at the idle start", pre, 0, false},
		{"prewarm: just before", pre, 5*m - 1, false},
		{"prewarm: at the start of the window", pre, 5 * m, true},
		{"prewarm: just before its end", pre, 7*m - 1, true},
		{"prewarm: at its end", pre, 7 * m, false},
		{"zero: never", autoscale.Windows{}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.w.Warm(tc.d); got != tc.want {
				t.Errorf("%v.Warm(%s) = %v, want %v", tc.w, tc.d, got, tc.want)
			}
		})
	}
}

// WarmFor must be the measure of the idle times Warm says yes to, since the
// simulator counts memory with one and cold starts with the other.
func TestWindowsWarmForMeasuresWarm(t *testing.T) {
	const s = time.Second
	for _, w := range []autoscale.Windows{{}, {KeepAlive: 7 * s}, {Prewarm: 3 * s, KeepAlive: 4 * s}, {Prewarm: 9 * s}} {
		var measured time.Duration
		for d := time.Duration(0); d <= 15*s; d += s {
			if got := w.WarmFor(d); got != measured {
				t.Errorf("%v.WarmFor(%s) = %s, want %s", w, d, got, measured)
			}
			if w.Warm(d) {
				measured += s
			}
		}
	}
}
