package bus

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// Health is the state of the bus as GET /api/system shows it.
type Health struct {
	Mode      Mode   `json:"mode"`
	URL       string `json:"url"` // "in-process", or the external server without credentials
	Connected bool   `json:"connected"`
	// Error is why the figures below are missing or partial.
	Error     string          `json:"error,omitempty"`
	JetStream JetStreamTotals `json:"jetstream"`
	Streams   []StreamHealth  `json:"streams"`
}

// JetStreamTotals add up every stream of the account.
type JetStreamTotals struct {
	Streams   int    `json:"streams"`
	Consumers int    `json:"consumers"`
	Messages  uint64 `json:"messages"`
	Bytes     uint64 `json:"bytes"`
}

// StreamHealth is one stream: its depth and what its consumers have yet
// to handle.
type StreamHealth struct {
	Name      string `json:"name"`
	Messages  uint64 `json:"messages"`
	Bytes     uint64 `json:"bytes"`
	Consumers int    `json:"consumers"`
	// Pending is the messages no consumer has been given yet (the sum
	// over consumers), AckPending those given and not yet acknowledged,
	// Redelivered those of AckPending given more than once.
	Pending     uint64           `json:"pending"`
	AckPending  int              `json:"ackPending"`
	Redelivered int              `json:"redelivered"`
	ByConsumer  []ConsumerHealth `json:"byConsumer,omitempty"`
}

// ConsumerHealth is one durable or ephemeral consumer of a stream.
type ConsumerHealth struct {
	Name        string `json:"name"`
	Pending     uint64 `json:"pending"`
	AckPending  int    `json:"ackPending"`
	Redelivered int    `json:"redelivered"`
}

// Health asks the server for the state of every stream and consumer. It
// does not fail: what could not be learnt is in Health.Error.
func (b *Bus) Health(ctx context.Context) Health {
	h := Health{Mode: b.mode, URL: b.url(), Connected: b.nc.IsConnected(), Streams: []StreamHealth{}}
	if !h.Connected {
		h.Error = "not connected: " + strings.ToLower(b.nc.Status().String())
		return h
	}
	var errs []error
	streams := b.js.ListStreams(ctx)
	for si := range streams.Info() {
		sh := StreamHealth{
			Name:      si.Config.Name,
			Messages:  si.State.Msgs,
			Bytes:     si.State.Bytes,
			Consumers: si.State.Consumers,
		}
		s, err := b.js.Stream(ctx, si.Config.Name)
		if err != nil {
			errs = append(errs, err)
		} else {
			consumers := s.ListConsumers(ctx)
			for ci := range consumers.Info() {
				sh.Pending += ci.NumPending
				sh.AckPending += ci.NumAckPending
				sh.Redelivered += ci.NumRedelivered
				sh.ByConsumer = append(sh.ByConsumer, ConsumerHealth{
					Name: ci.Name, Pending: ci.NumPending, AckPending: ci.NumAckPending, Redelivered: ci.NumRedelivered,
				})
			}
			if err := consumers.Err(); err != nil && !errors.Is(err, jetstream.ErrEndOfData) {
				errs = append(errs, err)
			}
		}
		h.JetStream.Streams++
		h.JetStream.Consumers += sh.Consumers
		h.JetStream.Messages += sh.Messages
		h.JetStream.Bytes += sh.Bytes
		h.Streams = append(h.Streams, sh)
	}
	if err := streams.Err(); err != nil && !errors.Is(err, jetstream.ErrEndOfData) {
		errs = append(errs, err)
	}
	slices.SortFunc(h.Streams, func(a, b StreamHealth) int { return strings.Compare(a.Name, b.Name) })
	if err := errors.Join(errs...); err != nil {
		h.Error = err.Error()
	}
	return h
}
