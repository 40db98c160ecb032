package metrics

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
)

// Histogram counts values (in milliseconds) in logarithmic buckets, each 2%
// wider than the last, starting at 1 µs; a percentile read from it is the
// bucket's geometric midpoint, within 1% of the true value. Histograms merge
// by adding counts, so percentiles of merged histograms (of many seconds, or
// of minutes saved before a restart) keep the same bound. The zero value is
// empty and ready.
type Histogram struct {
	counts map[uint16]uint64
	n      uint64
	sum    float64
	max    float64
}

const (
	growth   = 1.02
	minValue = 0.001 // ms: everything below lands in bucket 0
)

var logGrowth = math.Log(growth)

func bucketOf(ms float64) uint16 {
	if !(ms > minValue) { // also NaN
		return 0
	}
	b := 1 + math.Floor(math.Log(ms/minValue)/logGrowth)
	if b > math.MaxUint16 {
		return math.MaxUint16
	}
	return uint16(b)
}

// bucketValue is the geometric midpoint of bucket b.
func bucketValue(b uint16) float64 {
	if b == 0 {
		return minValue
	}
	return minValue * math.Pow(growth, float64(b)-0.5)
}

// Add counts one value.
func (h *Histogram) Add(ms float64) { h.add(bucketOf(ms), ms) }

// add counts ms, which falls in bucket b: callers adding one value to
// several histograms find its bucket once.
func (h *Histogram) add(b uint16, ms float64) {
	if h.counts == nil {
		h.counts = make(map[uint16]uint64)
	}
	h.counts[b]++
	h.n++
	h.sum += ms
	h.max = max(h.max, ms)
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	if h.counts == nil {
		h.counts = make(map[uint16]uint64, len(o.counts))
	}
	for b, c := range o.counts {
		h.counts[b] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// reset empties h, keeping its map for reuse.
func (h *Histogram) reset() {
	clear(h.counts)
	h.n, h.sum, h.max = 0, 0, 0
}

// Count is how many values were added.
func (h *Histogram) Count() uint64 { return h.n }

// Mean is the exact mean, 0 when empty.
func (h *Histogram) Mean() float64 {
	if h.n == 0 {
		return 0
	}
	return h.sum / float64(h.n)
}

// Max is the exact maximum.
func (h *Histogram) Max() float64 { return h.max }

// Quantiles returns the value at each quantile q (0 < q <= 1), 0 when empty.
func (h *Histogram) Quantiles(qs ...float64) []float64 {
	out := make([]float64, len(qs))
	if h.n == 0 {
		return out
	}
	buckets := make([]uint16, 0, len(h.counts))
	for b := range h.counts {
		buckets = append(buckets, b)
	}
	slices.Sort(buckets)
	for i, q := range qs {
		rank := uint64(math.Ceil(q * float64(h.n)))
		rank = max(rank, 1)
		var seen uint64
		for _, b := range buckets {
			seen += h.counts[b]
			if seen >= rank {
				out[i] = min(bucketValue(b), h.max)
				break
			}
		}
	}
	return out
}

// histogramJSON is a Histogram as it is saved: the bucket scheme, each
// non-empty bucket as [index, count], and the exact sum and maximum.
type histogramJSON struct {
	Scheme  string      `json:"scheme"`
	Buckets [][2]uint64 `json:"buckets"`
	Sum     float64     `json:"sum"`
	Max     float64     `json:"max"`
}

// scheme names the bucket layout, so that saved histograms are never
// merged into a different one.
const scheme = "log1.02-from-1us"

// MarshalJSON encodes the histogram's buckets, losslessly.
func (h *Histogram) MarshalJSON() ([]byte, error) {
	out := histogramJSON{Scheme: scheme, Buckets: make([][2]uint64, 0, len(h.counts)), Sum: h.sum, Max: h.max}
	for b, c := range h.counts {
		out.Buckets = append(out.Buckets, [2]uint64{uint64(b), c})
	}
	slices.SortFunc(out.Buckets, func(x, y [2]uint64) int { return int(x[0]) - int(y[0]) })
	return json.Marshal(out)
}

// UnmarshalJSON decodes what MarshalJSON wrote, replacing h's contents.
func (h *Histogram) UnmarshalJSON(b []byte) error {
	var in histogramJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	if in.Scheme != scheme {
		return fmt.Errorf("histogram: bucket scheme %q, want %q", in.Scheme, scheme)
	}
	*h = Histogram{sum: in.Sum, max: in.Max}
	for _, bc := range in.Buckets {
		if bc[0] > math.MaxUint16 {
			return fmt.Errorf("histogram: bucket %d out of range", bc[0])
		}
		if bc[1] == 0 {
			continue
		}
		if h.counts == nil {
			h.counts = make(map[uint16]uint64, len(in.Buckets))
		}
		h.counts[uint16(bc[0])] += bc[1]
		h.n += bc[1]
	}
	return nil
}
