package metrics

import (
	"math"
	"sort"
)

// Histogram counts values (in milliseconds) in logarithmic buckets, each 2%
// wider than the last, starting at 1 µs; a percentile read from it is the
// bucket's geometric midpoint, within 1% of the true value. Histograms merge
// by adding counts. The zero value is empty and ready.
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
	if ms <= minValue {
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
func (h *Histogram) Add(ms float64) {
	if h.counts == nil {
		h.counts = make(map[uint16]uint64)
	}
	h.counts[bucketOf(ms)]++
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
	sort.Slice(buckets, func(i, j int) bool { return buckets[i] < buckets[j] })
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
