package mongotest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/nimbusfaas/nimbus/internal/testenv"
)

// EnvURI names a MongoDB deployment to test against instead of FerretDB.
const EnvURI = "NIMBUS_TEST_MONGODB_URI"

// Server is a MongoDB wire-protocol server for tests.
type Server struct {
	uri      string // base URI, no database
	external bool   // from EnvURI: never stopped by us

	// FerretDB only.
	mu      sync.Mutex
	bin     string
	addr    string // host:port, kept across restarts
	dir     string // SQLite files
	owned   bool   // dir is ours to remove
	proc    *exec.Cmd
	stdin   io.WriteCloser
	exited  chan struct{}
	logFile *os.File
}

var (
	sharedOnce sync.Once
	shared     *Server
	sharedErr  error
)

// Shared returns the server the tests of this binary share: the deployment
// EnvURI names, or a FerretDB started on first use. Give each test its own
// database with NewDatabase. Packages that use it call Main from TestMain,
// so the server stops when their tests end.
func Shared(t testing.TB) *Server {
	t.Helper()
	sharedOnce.Do(func() {
		if uri := os.Getenv(EnvURI); uri != "" {
			shared = &Server{uri: uri, external: true}
			return
		}
		shared, sharedErr = startFerret("")
	})
	if sharedErr != nil {
		unavailable(t, sharedErr)
	}
	return shared
}

// Start starts a FerretDB of the test's own, which it may Stop and Restart
// (a deployment named by EnvURI is never used for that). It stops when the
// test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := startFerret(t.TempDir())
	if err != nil {
		unavailable(t, err)
	}
	t.Cleanup(func() { s.shutdown() })
	return s
}

// Main runs the tests, then stops the shared server, if one was started,
// and exits with the tests' exit code.
func Main(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.shutdown()
	}
	os.Exit(code)
}

// unavailable skips t, or fails it in CI, where the MongoDB tests must run.
func unavailable(t testing.TB, err error) {
	t.Helper()
	testenv.Require(t, "a MongoDB server (set "+EnvURI+", or make FerretDB buildable)", err)
}

// URI is the server's base connection string, without a database.
func (s *Server) URI() string { return s.uri }

// External reports whether the server is a deployment EnvURI named.
func (s *Server) External() bool { return s.external }

// NewDatabase returns a connection string for a fresh database of its own,
// dropped when the test ends.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "nimbus_test_" + hex.EncodeToString(b[:])
	uri := WithDatabase(s.uri, name)
	t.Cleanup(func() {
		if err := dropDatabase(uri, name); err != nil {
			t.Logf("mongotest: drop database %s: %v", name, err)
		}
	})
	return uri
}

func dropDatabase(uri, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(5 * time.Second))
	if err != nil {
		return err
	}
	defer c.Disconnect(ctx)
	return c.Database(name).Drop(ctx)
}

// WithDatabase returns uri with its database (the path) set to name, its
// hosts and options kept.
func WithDatabase(uri, name string) string {
	scheme, rest, ok := strings.Cut(uri, "://")
	if !ok {
		return uri
	}
	rest, query, hasQuery := strings.Cut(rest, "?")
	hosts, _, _ := strings.Cut(rest, "/")
	out := scheme + "://" + hosts + "/" + name
	if hasQuery {
		out += "?" + query
	}
	return out
}

// Stop stops a server started by Start, as an outage would: clients get
// connection errors until Restart.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if s.external {
		t.Fatal("mongotest: cannot stop an external MongoDB deployment")
	}
	if err := s.stop(); err != nil {
		t.Fatalf("mongotest: stop FerretDB: %v", err)
	}
}

// Restart starts the stopped server again on the same address, with its
// data.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if s.external {
		t.Fatal("mongotest: cannot restart an external MongoDB deployment")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		t.Fatal("mongotest: Restart of a running server")
	}
	if err := s.run(s.addr); err != nil {
		t.Fatalf("mongotest: restart FerretDB: %v", err)
	}
}

// startFerret builds (or finds) the helper and starts it on a free port,
// keeping data in dir, or in a directory of its own when dir is "".
func startFerret(dir string) (*Server, error) {
	bin, err := helperBinary()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, dir: dir}
	if dir == "" {
		if s.dir, err = os.MkdirTemp("", "nimbus-ferretdb-"); err != nil {
			return nil, err
		}
		s.owned = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.run("127.0.0.1:0"); err != nil {
		if s.owned {
			os.RemoveAll(s.dir)
		}
		return nil, err
	}
	return s, nil
}

// run starts the helper listening on addr and waits until it accepts
// connections. s.mu is held.
func (s *Server) run(addr string) error {
	log, err := os.OpenFile(filepath.Join(s.dir, "ferretdb.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.bin, "-listen", addr, "-dir", filepath.Join(s.dir, "data"))
	cmd.Stderr = log
	// The helper exits when its stdin closes: it never outlives this
	// process, even one killed by a test timeout.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		log.Close()
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		log.Close()
		return err
	}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	go func() { cmd.Wait(); close(exited) }()

	select {
	case line := <-lines:
		uri, ok := strings.CutPrefix(line, "listening ")
		if !ok {
			cmd.Process.Kill()
			<-exited
			log.Close()
			return fmt.Errorf("FerretDB said %q, want \"listening URI\"", line)
		}
		scheme, rest, _ := strings.Cut(uri, "://")
		s.addr, _, _ = strings.Cut(rest, "/")
		s.uri = scheme + "://" + s.addr + "/"
	case <-exited:
		log.Close()
		return fmt.Errorf("FerretDB exited before listening (%v): %s", cmd.ProcessState, tail(filepath.Join(s.dir, "ferretdb.log")))
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-exited
		log.Close()
		return fmt.Errorf("FerretDB not listening after 60s: %s", tail(filepath.Join(s.dir, "ferretdb.log")))
	}
	s.proc, s.stdin, s.exited, s.logFile = cmd, stdin, exited, log
	return nil
}

// stop ends the helper: SIGTERM, then SIGKILL if it lingers.
func (s *Server) stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return nil
	}
	_ = s.proc.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		_ = s.proc.Process.Kill()
		<-s.exited
		err = errors.New("FerretDB did not stop within 15s of SIGTERM; killed")
	}
	s.stdin.Close()
	s.logFile.Close()
	s.proc = nil
	return err
}

// shutdown stops the helper and removes the files it owns.
func (s *Server) shutdown() {
	if s.external {
		return
	}
	_ = s.stop()
	if s.owned {
		os.RemoveAll(s.dir)
	}
}

// tail returns the end of a log file, for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}
