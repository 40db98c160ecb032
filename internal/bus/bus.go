package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Mode says where the NATS server runs.
type Mode string

const (
	Embedded Mode = "embedded" // in this process, state under the data dir
	External Mode = "external" // a NATS cluster at Config.URL
)

// Config is how to reach NATS.
type Config struct {
	// DataDir holds the embedded server's JetStream files, in DataDir/nats.
	// Unused with URL.
	DataDir string
	// URL (NIMBUS_NATS_URL), when set, is an external NATS server or
	// cluster ("nats://host:4222", comma-separated for several); nothing
	// is embedded then. CredsFile (NIMBUS_NATS_CREDS) is a .creds file, or
	// User and Password (NIMBUS_NATS_USER, NIMBUS_NATS_PASSWORD) log in.
	URL, CredsFile, User, Password string
	// Name is the connection's name as the server shows it ("nimbus").
	Name   string
	Logger *slog.Logger
}

// Bus is an open connection to NATS JetStream.
type Bus struct {
	mode Mode
	nc   *nats.Conn
	js   jetstream.JetStream
	srv  *server.Server // the embedded server, nil when external
	log  *slog.Logger
}

// MaxPayload is the largest message the embedded server takes. An
// external server has its own limit: Bus.MaxPayload says which holds.
const MaxPayload = 8 << 20

// MaxPayload is the largest message the server takes.
func (b *Bus) MaxPayload() int64 { return b.nc.MaxPayload() }

// readyTimeout bounds how long the embedded server may take to start and
// to recover its streams from disk.
const readyTimeout = time.Minute

// Open connects to the external NATS in cfg.URL, or else starts the
// embedded server, and checks that JetStream answers.
func Open(ctx context.Context, cfg Config) (*Bus, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "bus")
	if cfg.Name == "" {
		cfg.Name = "nimbus"
	}
	b := &Bus{log: log}
	opts := []nats.Option{nats.Name(cfg.Name), nats.MaxReconnects(-1)}
	url := cfg.URL
	if url == "" {
		srv, user, password, err := startEmbedded(cfg.DataDir, log)
		if err != nil {
			return nil, err
		}
		b.mode, b.srv = Embedded, srv
		opts = append(opts, nats.InProcessServer(srv), nats.UserInfo(user, password))
	} else {
		b.mode = External
		switch {
		case cfg.CredsFile != "":
			opts = append(opts, nats.UserCredentials(cfg.CredsFile))
		case cfg.User != "" || cfg.Password != "":
			opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
		}
		opts = append(opts,
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
				if err != nil {
					log.Warn("disconnected from NATS", "error", err)
				}
			}),
			nats.ReconnectHandler(func(nc *nats.Conn) {
				log.Info("reconnected to NATS", "url", nc.ConnectedUrlRedacted())
			}))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		b.shutdownServer()
		return nil, fmt.Errorf("bus: connect to %s NATS: %w", b.mode, err)
	}
	b.nc = nc
	b.js, err = jetstream.New(nc)
	if err == nil {
		_, err = b.js.AccountInfo(ctx)
	}
	if err != nil {
		nc.Close()
		b.shutdownServer()
		return nil, fmt.Errorf("bus: jetstream on %s NATS: %w", b.mode, err)
	}
	log.Info("bus ready", "mode", b.mode, "url", b.url())
	return b, nil
}

// Mode says whether the server is embedded or external.
func (b *Bus) Mode() Mode { return b.mode }

// JetStream is the JetStream API, for the packages that keep streams.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// EnsureStream creates the stream, or updates it to cfg if it exists.
func (b *Bus) EnsureStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := b.js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("bus: stream %s: %w", cfg.Name, err)
	}
	return s, nil
}

// KeyValue creates the key-value bucket, or updates it to cfg if it exists.
func (b *Bus) KeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := b.js.CreateOrUpdateKeyValue(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("bus: key-value bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}

// Close drains the connection (what was published is flushed, pending
// callbacks finish) until ctx ends, then stops the embedded server.
func (b *Bus) Close(ctx context.Context) error {
	closed := make(chan struct{})
	b.nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	err := b.nc.Drain()
	if errors.Is(err, nats.ErrConnectionClosed) {
		err = nil
	} else if err == nil {
		select {
		case <-closed:
		case <-ctx.Done():
			err = fmt.Errorf("bus: drain: %w", ctx.Err())
		}
	}
	b.nc.Close()
	b.shutdownServer()
	return err
}

func (b *Bus) shutdownServer() {
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
}

// url is where the connection goes, without credentials.
func (b *Bus) url() string {
	if b.mode == Embedded {
		return "in-process"
	}
	return b.nc.ConnectedUrlRedacted()
}
