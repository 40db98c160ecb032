package bus

import "github.com/nats-io/nats-server/v2/server"

// EmbeddedServer is the embedded NATS server, nil when external.
func (b *Bus) EmbeddedServer() *server.Server { return b.srv }
