package cli_test

import (
	"testing"

	"github.com/nimbusfaas/nimbus/internal/cli"
)

func TestSparkline(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []float64
		want string
	}{
		{"empty", nil, ""},
		{"all zero", []float64{0, 0, 0}, "▁▁▁"},
		{"scaled to the largest", []float64{0, 1, 2, 3, 4, 5, 6, 7, 8}, "▁▁▂▃▄▅▆▇█"},
		{"one spike", []float64{0, 0, 100, 0}, "▁▁█▁"},
		{"a small value beside a large one", []float64{1, 1000}, "▁█"},
		{"fractions", []float64{0.5, 0.25, 1}, "▄▂█"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := cli.Sparkline(tc.in); got != tc.want {
				t.Errorf("Sparkline(%v) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
