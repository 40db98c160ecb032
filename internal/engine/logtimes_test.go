package engine

import (
	"slices"
	"testing"
	"time"
)

// TestLogTimesAreChecked: a worker's word on when its lines began is kept
// only if it holds together.
func TestLogTimesAreChecked(t *testing.T) {
	for _, tc := range []struct {
		name  string
		times []int
		logs  string
		took  time.Duration
		want  []int
	}{
		{"one a line", []int{0, 5, 5}, "a\nb\nc\n", time.Second, []int{0, 5, 5}},
		{"fewer than lines", []int{0}, "a\nb\n", time.Second, []int{0}},
		{"a partial last line", []int{0, 7}, "a\nb", time.Second, []int{0, 7}},
		{"more than lines: the lines cut off take theirs", []int{0, 1, 2, 3}, "a\nb\n", time.Second, []int{0, 1}},
		{"out of order", []int{5, 3}, "a\nb\n", time.Second, nil},
		{"negative", []int{-1, 3}, "a\nb\n", time.Second, nil},
		{"after the call ended", []int{0, 5000}, "a\nb\n", time.Second, nil},
		{"no logs", []int{0}, "", time.Second, nil},
	} {
		if got := logTimes(tc.times, tc.logs, tc.took, 0); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// Times count from the record's start: a cold start before the
	// request moves them on.
	if got := logTimes([]int{0, 4}, "a\nb\n", time.Second, 25*time.Millisecond); !slices.Equal(got, []int{25, 29}) {
		t.Errorf("after a 25 ms start: %v, want [25 29]", got)
	}
}
