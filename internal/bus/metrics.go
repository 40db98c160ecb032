package bus

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RegisterMetrics adds the bus's gauges to reg: whether it is connected,
// and per stream and consumer the depth, pending, unacknowledged and
// redelivered messages, read from the server at each scrape.
func RegisterMetrics(reg prometheus.Registerer, b *Bus) error {
	return reg.Register(collector{b})
}

// scrapeTimeout bounds the server round trips of one scrape.
const scrapeTimeout = 5 * time.Second

type collector struct{ b *Bus }

var (
	connectedDesc = prometheus.NewDesc("nimbus_bus_connected",
		"1 while the connection to NATS is up.", []string{"mode"}, nil)
	streamMessagesDesc = prometheus.NewDesc("nimbus_bus_stream_messages",
		"Messages held in the JetStream stream.", []string{"stream"}, nil)
	streamBytesDesc = prometheus.NewDesc("nimbus_bus_stream_bytes",
		"Bytes held in the JetStream stream.", []string{"stream"}, nil)
	pendingDesc = prometheus.NewDesc("nimbus_bus_consumer_pending",
		"Messages of the stream not yet delivered to the consumer.", []string{"stream", "consumer"}, nil)
	ackPendingDesc = prometheus.NewDesc("nimbus_bus_consumer_ack_pending",
		"Messages delivered to the consumer and not yet acknowledged.", []string{"stream", "consumer"}, nil)
	redeliveredDesc = prometheus.NewDesc("nimbus_bus_consumer_redelivered",
		"Unacknowledged messages the consumer has been given more than once.", []string{"stream", "consumer"}, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{connectedDesc, streamMessagesDesc, streamBytesDesc, pendingDesc, ackPendingDesc, redeliveredDesc} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	h := c.b.Health(ctx)
	connected := 0.0
	if h.Connected {
		connected = 1
	}
	ch <- prometheus.MustNewConstMetric(connectedDesc, prometheus.GaugeValue, connected, string(h.Mode))
	for _, s := range h.Streams {
		ch <- prometheus.MustNewConstMetric(streamMessagesDesc, prometheus.GaugeValue, float64(s.Messages), s.Name)
		ch <- prometheus.MustNewConstMetric(streamBytesDesc, prometheus.GaugeValue, float64(s.Bytes), s.Name)
		for _, cs := range s.ByConsumer {
			ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(cs.Pending), s.Name, cs.Name)
			ch <- prometheus.MustNewConstMetric(ackPendingDesc, prometheus.GaugeValue, float64(cs.AckPending), s.Name, cs.Name)
			ch <- prometheus.MustNewConstMetric(redeliveredDesc, prometheus.GaugeValue, float64(cs.Redelivered), s.Name, cs.Name)
		}
	}
}
