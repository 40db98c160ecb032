package async

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// Depth is the state of a function's queue.
type Depth struct {
	// Queued calls wait for their turn (retries waiting out their backoff
	// included); InFlight are in a server's hands.
	Queued   uint64 `json:"queued"`
	InFlight int    `json:"inFlight"`
	// Redelivered of InFlight were given out more than once.
	Redelivered int `json:"redelivered"`
	// OldestAgeSeconds is how long the oldest call not yet done has
	// waited (0 for none).
	OldestAgeSeconds float64 `json:"oldestAgeSeconds"`
	DeadLetters      int     `json:"deadLetters"`
}

// Depth reports the state of a function's queue.
func (q *Queue) Depth(ctx context.Context, functionID string) (Depth, error) {
	var d Depth
	if !idRE.MatchString(functionID) {
		return d, fn.ErrNotFound
	}
	info, err := q.queue.Consumer(ctx, consumerPrefix+functionID)
	if err == nil {
		ci := info.CachedInfo()
		d.Queued, d.InFlight, d.Redelivered = ci.NumPending, ci.NumAckPending, ci.NumRedelivered
		// Calls waiting out a retry backoff count as in flight to
		// JetStream; they are queued to the user.
		if running := q.running(functionID); d.InFlight > running {
			d.Queued += uint64(d.InFlight - running)
			d.InFlight = running
		}
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return d, fmt.Errorf("async queue: %v: %w", err, fn.ErrUnavailable)
	}
	m, err := q.queue.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(q.subject(functionID)))
	switch {
	case err == nil:
		d.OldestAgeSeconds = max(0, time.Since(m.Time).Seconds())
	case !errors.Is(err, jetstream.ErrMsgNotFound):
		return d, fmt.Errorf("async queue: %v: %w", err, fn.ErrUnavailable)
	}
	dead, err := q.dead.Info(ctx, jetstream.WithSubjectFilter(deadPrefix+functionID+".*"))
	if err != nil {
		return d, fmt.Errorf("async queue: %v: %w", err, fn.ErrUnavailable)
	}
	d.DeadLetters = len(dead.State.Subjects)
	return d, nil
}

// running is how many calls of a function this server runs now.
func (q *Queue) running(functionID string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if c := q.consumers[functionID]; c != nil {
		return int(c.running.Load())
	}
	return 0
}

// RegisterMetrics adds the queue's figures to reg: per function (that
// this server pulls calls of) its depth, the age of its oldest call and
// its dead letters, read at each scrape; and counters of what was
// accepted, retried and given up.
func RegisterMetrics(reg prometheus.Registerer, q *Queue, names func(id string) string) error {
	return reg.Register(collector{q, names})
}

type collector struct {
	q     *Queue
	names func(id string) string
}

var (
	depthDesc = prometheus.NewDesc("nimbus_async_queue_depth",
		"Async calls of the function waiting to run (retries included).", []string{"function"}, nil)
	inFlightDesc = prometheus.NewDesc("nimbus_async_in_flight",
		"Async calls of the function running on this server.", []string{"function"}, nil)
	oldestDesc = prometheus.NewDesc("nimbus_async_oldest_age_seconds",
		"How long the oldest async call of the function not yet done has waited.", []string{"function"}, nil)
	deadDesc = prometheus.NewDesc("nimbus_async_dead_letters",
		"Async calls of the function in its dead letters.", []string{"function"}, nil)
	acceptedDesc = prometheus.NewDesc("nimbus_async_accepted_total",
		"Async calls this server queued.", nil, nil)
	duplicatesDesc = prometheus.NewDesc("nimbus_async_duplicates_total",
		"Async calls this server did not queue: their idempotency key was seen.", nil, nil)
	retriedDesc = prometheus.NewDesc("nimbus_async_retries_total",
		"Failed async attempts this server put back for a retry.", nil, nil)
	deadLetteredDesc = prometheus.NewDesc("nimbus_async_dead_lettered_total",
		"Async calls this server sent to the dead letters.", nil, nil)
	destFailDesc = prometheus.NewDesc("nimbus_async_destination_failures_total",
		"Destination records this server could not deliver.", nil, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{depthDesc, inFlightDesc, oldestDesc, deadDesc, acceptedDesc, duplicatesDesc, retriedDesc, deadLetteredDesc, destFailDesc} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	q := c.q
	for d, v := range map[*prometheus.Desc]int64{
		acceptedDesc: q.stats.Accepted.Load(), duplicatesDesc: q.stats.Duplicates.Load(),
		retriedDesc: q.stats.Retried.Load(), deadLetteredDesc: q.stats.DeadLettered.Load(),
		destFailDesc: q.stats.DestinationFailures.Load(),
	} {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	q.mu.Lock()
	ids := make([]string, 0, len(q.consumers))
	for id := range q.consumers {
		ids = append(ids, id)
	}
	q.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, id := range ids {
		d, err := q.Depth(ctx, id)
		if err != nil {
			continue
		}
		name := c.names(id)
		if name == "" {
			continue
		}
		ch <- prometheus.MustNewConstMetric(depthDesc, prometheus.GaugeValue, float64(d.Queued), name)
		ch <- prometheus.MustNewConstMetric(inFlightDesc, prometheus.GaugeValue, float64(d.InFlight), name)
		ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, d.OldestAgeSeconds, name)
		ch <- prometheus.MustNewConstMetric(deadDesc, prometheus.GaugeValue, float64(d.DeadLetters), name)
	}
}
