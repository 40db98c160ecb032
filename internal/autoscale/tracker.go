package autoscale

import (
	"math"
	"slices"
	"sync"
	"time"
)

// Mode names the rule behind a decision.
type Mode string

const (
	ModeFixed     Mode = "fixed"     // Config.Fixed: the history says nothing better
	ModeHistogram Mode = "histogram" // head and tail percentiles of the in-range idle times
	ModePredicted Mode = "predicted" // a window around the recent out-of-range idle times
)

// Tracker is one function's history of idle times and the Windows it implies.
// Safe for concurrent use. Observe is O(1) (amortized: counts are halved once
// every MaxSamples/2 observations); Windows is O(bins) after an Observe and
// O(1) otherwise. Its memory is fixed at creation: about 4 bytes per bin
// (299 bins by default) and 8 per remembered out-of-range idle time.
type Tracker struct {
	cfg   Config
	nFine int           // bins of width fine covering [0, Bin)
	fine  time.Duration // Bin / nFine

	mu     sync.Mutex
	counts []uint32 // nFine fine bins, then the Bin-wide bins from Bin to Range
	in     int      // sum of counts
	oob    int      // out-of-range idle times, halved with the counts
	recent []time.Duration
	next   int // next slot of recent to write
	seen   int // out-of-range idle times ever observed (for len of recent)

	valid  bool
	cached Windows
	mode   Mode
}

// NewTracker returns an empty Tracker: until it has seen enough idle times
// its decision is Windows{KeepAlive: cfg.Fixed}.
func NewTracker(cfg Config) *Tracker {
	cfg = cfg.withDefaults()
	nFine := max(int(cfg.Bin/cfg.Fine), 1)
	coarse := int((cfg.Range + cfg.Bin - 1) / cfg.Bin) // including the first, split one
	return &Tracker{
		cfg:    cfg,
		nFine:  nFine,
		fine:   cfg.Bin / time.Duration(nFine),
		counts: make([]uint32, nFine+coarse-1),
		recent: make([]time.Duration, cfg.OOBHistory),
	}
}

// Config returns the tracker's configuration with the defaults filled in.
func (t *Tracker) Config() Config { return t.cfg }

// Observe records one idle time: from the end of the function's last call
// (when none was left running or queued) to the next arrival.
func (t *Tracker) Observe(idle time.Duration) {
	idle = max(idle, 0)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.valid = false
	if idle >= t.cfg.Range {
		t.oob++
		t.recent[t.next] = idle
		t.next = (t.next + 1) % len(t.recent)
		t.seen++
	} else {
		t.counts[t.bin(idle)]++
		t.in++
	}
	if t.in+t.oob >= t.cfg.MaxSamples {
		t.halve()
	}
}

// bin is the index of the bin holding an in-range idle time.
func (t *Tracker) bin(idle time.Duration) int {
	if idle < t.cfg.Bin {
		return min(int(idle/t.fine), t.nFine-1)
	}
	return min(t.nFine+int((idle-t.cfg.Bin)/t.cfg.Bin), len(t.counts)-1)
}

// edges returns bin i's lower and upper edge.
func (t *Tracker) edges(i int) (lo, hi time.Duration) {
	if i < t.nFine {
		lo = time.Duration(i) * t.fine
		if i == t.nFine-1 {
			return lo, t.cfg.Bin
		}
		return lo, lo + t.fine
	}
	lo = t.cfg.Bin * time.Duration(i-t.nFine+1)
	return lo, min(lo+t.cfg.Bin, t.cfg.Range)
}

// halve forgets half of the history.
func (t *Tracker) halve() {
	t.in = 0
	for i, c := range t.counts {
		t.counts[i] = c / 2
		t.in += int(c / 2)
	}
	t.oob /= 2
}

// Windows returns the current decision.
func (t *Tracker) Windows() Windows {
	w, _ := t.Decision()
	return w
}

// Decision returns the current decision and the rule that made it.
func (t *Tracker) Decision() (Windows, Mode) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.valid {
		t.cached, t.mode = t.decide()
		t.valid = true
	}
	return t.cached, t.mode
}

// decide applies the rules in the paper's order: the predictor when most idle
// times are out of range, then the histogram when it is representative, then
// the fixed keep-alive.
func (t *Tracker) decide() (Windows, Mode) {
	c := t.cfg
	if total := t.in + t.oob; total > 0 && float64(t.oob) >= c.OOBShare*float64(total) {
		if w, ok := t.predict(); ok {
			return w, ModePredicted
		}
	}
	if t.in >= c.MinSamples && t.representative() {
		head, _ := t.edges(t.percentile(c.Head))
		_, tail := t.edges(t.percentile(c.Tail))
		prewarm := time.Duration(float64(head) * (1 - c.Margin))
		end := time.Duration(float64(tail) * (1 + c.Margin))
		if prewarm < c.MinPrewarm {
			prewarm = 0 // keep the instances rather than release and start one moments later
		}
		return Windows{Prewarm: prewarm, KeepAlive: max(end-prewarm, c.MinKeepAlive)}, ModeHistogram
	}
	return Windows{KeepAlive: c.Fixed}, ModeFixed
}

// representative reports whether the in-range idle times are concentrated:
// the CV of the counts of the Range/Bin bins (the fine bins summed into the
// first) reaches Config.CV and Config.CVNoise times what a random spread of
// as many idle times would show.
func (t *Tracker) representative() bool {
	if t.in == 0 {
		return false
	}
	bins := len(t.counts) - t.nFine + 1
	mean := float64(t.in) / float64(bins)
	var first float64
	for _, n := range t.counts[:t.nFine] {
		first += float64(n)
	}
	ss := (first - mean) * (first - mean)
	for _, n := range t.counts[t.nFine:] {
		d := float64(n) - mean
		ss += d * d
	}
	cv := math.Sqrt(ss/float64(bins)) / mean
	noise := t.cfg.CVNoise * math.Sqrt(float64(bins-1)/float64(t.in))
	return cv >= t.cfg.CV && cv >= noise
}

// percentile returns the index of the bin holding the p-th percentile of the
// in-range idle times (the smallest bin whose cumulative count reaches
// ceil(p*in), at least 1).
func (t *Tracker) percentile(p float64) int {
	rank := max(int(math.Ceil(p*float64(t.in))), 1)
	cum := 0
	for i, n := range t.counts {
		cum += int(n)
		if cum >= rank {
			return i
		}
	}
	return len(t.counts) - 1
}

// predict is the predictor for out-of-range idle times, a simple stand-in for
// the paper's ARIMA model: when the latest OOBHistory of them (at least
// OOBMinSamples) lie within OOBSpread of their median, the next one is
// expected within the same span. The window pre-warms at the smallest minus a
// pad and ends at the largest plus the pad, the pad being OOBPad of the span
// but at least one Bin.
func (t *Tracker) predict() (Windows, bool) {
	c := t.cfg
	n := min(t.seen, len(t.recent))
	if n < c.OOBMinSamples {
		return Windows{}, false
	}
	var buf [64]time.Duration
	r := append(buf[:0], t.recent[:n]...)
	slices.Sort(r)
	lo, hi, med := r[0], r[n-1], r[n/2]
	if n%2 == 0 {
		med = (r[n/2-1] + r[n/2]) / 2
	}
	if float64(hi-lo) > c.OOBSpread*float64(med) {
		return Windows{}, false
	}
	pad := max(time.Duration(c.OOBPad*float64(hi-lo)), c.Bin)
	prewarm := max(lo-pad, 0)
	return Windows{Prewarm: prewarm, KeepAlive: hi + pad - prewarm}, true
}
