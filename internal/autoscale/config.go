package autoscale

import "time"

// Config tunes a Tracker. The zero value of every field means its default;
// for the fields where zero is a sensible setting, a negative value means
// zero (none). The defaults are the paper's where it gives one.
type Config struct {
	// Fixed is the keep-alive (Windows{KeepAlive: Fixed}) used while the
	// history does not say better: too few idle times, idle times spread
	// evenly over the range, or out-of-range idle times without a pattern.
	// Default 10m, the platform's keep-alive before this policy.
	Fixed time.Duration

	// Range is the longest idle time the histogram holds; longer idle times
	// are out of range (OOB) and go to the predictor. Default 4h.
	Range time.Duration

	// Bin is the width of the histogram's bins from Bin up to Range, and of
	// the bins the representativeness test (CV) counts. Default 1m.
	Bin time.Duration

	// Fine is the width of the bins that split the first Bin, so that idle
	// times under a minute give keep-alives and pre-warms of seconds rather
	// than whole minutes. Fine >= Bin gives the paper's plain 1-minute bins.
	// Default 1s.
	Fine time.Duration

	// Head and Tail are the percentiles of the in-range idle times that bound
	// the windows: the pre-warm starts at the head, the keep-alive ends at the
	// tail. Defaults 0.05 and 0.99.
	Head, Tail float64

	// Margin widens the windows: the pre-warm starts at head*(1-Margin)
	// (the head rounded down to its bin's lower edge) and the keep-alive ends
	// at tail*(1+Margin) (the tail rounded up to its bin's upper edge).
	// Default 0.10; negative means none.
	Margin float64

	// MinPrewarm: a pre-warm shorter than this becomes 0 (keep the instances
	// warm from the idle start), since releasing an instance to start another
	// moments later saves little memory and costs a start. Default 1m;
	// negative means none (always release and pre-warm, as in the paper).
	MinPrewarm time.Duration

	// MinKeepAlive is the shortest keep-alive the histogram rule gives. The
	// fine bins measure idle times to the second, but the engine also
	// releases an instance idle beside running calls once it has been idle
	// for the whole window, so a keep-alive of seconds starves functions that
	// run calls side by side: on the bursty trace a 10s floor gave 10.6%
	// cold starts, 30s 4.5%, 1m 2.9%, against 1.9% with a fixed 10m.
	// Default 1m (the least the paper's 1-minute bins give); negative means
	// none.
	MinKeepAlive time.Duration

	// MinSamples is how many in-range idle times the histogram needs before
	// its percentiles are used. Default 10.
	MinSamples int

	// CV is the paper's representativeness threshold: the coefficient of
	// variation (standard deviation over mean) of the counts of the
	// Range/Bin bins must reach it, i.e. the idle times must be concentrated
	// in a few bins rather than spread over the range. Default 2.
	CV float64

	// CVNoise guards the CV test against small samples: n idle times spread
	// uniformly at random over B bins show a CV near sqrt((B-1)/n) (about 4.9
	// for 10 samples over 240 bins), which would pass the paper's threshold.
	// The CV must also reach CVNoise times that. Default 2; negative means
	// off (the paper's test alone).
	CVNoise float64

	// OOBShare: when at least this share of the idle times is out of range,
	// the predictor decides (if it finds a pattern). Default 0.5.
	OOBShare float64

	// OOBHistory is how many of the latest out-of-range idle times the
	// predictor keeps; OOBMinSamples how many it needs. Defaults 8 and 3.
	OOBHistory, OOBMinSamples int

	// OOBSpread: the recent out-of-range idle times form a pattern when their
	// spread (max - min) is at most OOBSpread times their median. Default 0.1
	// (e.g. a daily call that wanders by up to 2.4h).
	OOBSpread float64

	// OOBPad widens the predictor's window beyond the span of the recent
	// out-of-range idle times, on each side, by OOBPad times that span (but
	// at least one Bin). Default 0.5; negative means one Bin.
	OOBPad float64

	// MaxSamples bounds how much history counts: when the histogram holds
	// this many idle times, every count is halved, so old behaviour fades.
	// Default 10000.
	MaxSamples int
}

// Defaults of Config.
const (
	DefaultFixed      = 10 * time.Minute
	DefaultRange      = 4 * time.Hour
	DefaultBin        = time.Minute
	DefaultFine       = time.Second
	DefaultMinPrewarm = time.Minute
)

// withDefaults returns c with every zero field set to its default and every
// negative "none" field set to zero.
func (c Config) withDefaults() Config {
	dur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	num := func(v *float64, d float64, negNone bool) {
		switch {
		case *v == 0:
			*v = d
		case *v < 0 && negNone:
			*v = 0
		}
	}
	cnt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	dur(&c.Fixed, DefaultFixed)
	dur(&c.Range, DefaultRange)
	dur(&c.Bin, DefaultBin)
	dur(&c.Fine, DefaultFine)
	dur(&c.MinPrewarm, DefaultMinPrewarm)
	c.MinPrewarm = max(c.MinPrewarm, 0)
	dur(&c.MinKeepAlive, time.Minute)
	c.MinKeepAlive = max(c.MinKeepAlive, 0)
	c.Fixed = max(c.Fixed, 0)
	num(&c.Head, 0.05, false)
	num(&c.Tail, 0.99, false)
	num(&c.Margin, 0.10, true)
	num(&c.CV, 2, false)
	num(&c.CVNoise, 2, true)
	num(&c.OOBShare, 0.5, false)
	num(&c.OOBSpread, 0.1, false)
	num(&c.OOBPad, 0.5, true)
	cnt(&c.MinSamples, 10)
	cnt(&c.OOBHistory, 8)
	cnt(&c.OOBMinSamples, 3)
	cnt(&c.MaxSamples, 10000)
	c.OOBMinSamples = min(c.OOBMinSamples, c.OOBHistory)
	c.Bin = max(c.Bin, time.Nanosecond)
	c.Range = max(c.Range, c.Bin)
	c.Fine = min(max(c.Fine, time.Nanosecond), c.Bin)
	return c
}
