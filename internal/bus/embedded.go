package bus

import (
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/crypto/bcrypt"
)

// startEmbedded starts a NATS server with JetStream storing under
// dataDir/nats. It opens no network listener at all (clients reach it
// through Server.InProcessConn) and still wants a user and password,
// made up afresh each start, so that nothing but this process's own
// connection can log in.
func startEmbedded(dataDir string, log *slog.Logger) (srv *server.Server, user, password string, err error) {
	if dataDir == "" {
		return nil, "", "", fmt.Errorf("bus: no data dir for the embedded NATS server")
	}
	dir, err := filepath.Abs(filepath.Join(dataDir, "nats"))
	if err != nil {
		return nil, "", "", fmt.Errorf("bus: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", "", fmt.Errorf("bus: %w", err)
	}
	password = rand.Text()
	// The server holds only a hash (and does not warn of a plaintext
	// password); one connection per start makes the cost negligible.
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		return nil, "", "", fmt.Errorf("bus: %w", err)
	}
	opts := &server.Options{
		ServerName: "nimbus",
		DontListen: true,
		JetStream:  true,
		StoreDir:   dir,
		NoSigs:     true,
		// An async call carries its event (up to 6 MiB, the API's body
		// limit) in one message.
		MaxPayload: MaxPayload,
		Username:   "nimbus",
		Password:   string(hash),
	}
	srv, err = server.NewServer(opts)
	if err != nil {
		return nil, "", "", fmt.Errorf("bus: embedded NATS: %w", err)
	}
	srv.SetLoggerV2(natsLogger{log.With("nats", "server")}, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(readyTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, "", "", fmt.Errorf("bus: embedded NATS not ready after %s", readyTimeout)
	}
	return srv, opts.Username, password, nil
}

// natsLogger writes the embedded server's log through slog. Its notices
// (startup banners, JetStream recovery) are debug-level chatter for us.
type natsLogger struct{ log *slog.Logger }

func (l natsLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l natsLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l natsLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l natsLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l natsLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l natsLogger) Tracef(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }

var _ server.Logger = natsLogger{}
