package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/nimbusfaas/nimbus/internal/store"
)

// Memory is the path of a private in-memory database, gone at Close. It is
// served by one connection for both reads and writes.
const Memory = ":memory:"

// busyTimeoutMs bounds how long a connection waits for a lock held by
// another process (or a WAL checkpoint) before failing with SQLITE_BUSY.
const busyTimeoutMs = 5000

// Store is a store.Store kept in one SQLite database file. It is safe for
// concurrent use.
type Store struct {
	w *sql.DB // one connection: every write, in order
	r *sql.DB // read-only pool; the same as w for Memory

	// Execution inserts, prepared once on the writer.
	insertMany, insertOne *sql.Stmt

	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*Store)(nil)

// Open opens (creating it if need be) the database file at path, or a
// private in-memory database for Memory, and brings its schema up to date.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: open: empty path")
	}
	if strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("sqlite: open %q: path may not contain '?'", path)
	}
	w, err := sql.Open("sqlite", writerDSN(path))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := migrateWhenFree(ctx, w); err != nil {
		w.Close()
		return nil, wrapErr("open "+path, err)
	}
	s := &Store{w: w, r: w}
	if s.insertMany, err = w.PrepareContext(ctx, insertSQL(insertChunk)); err == nil {
		s.insertOne, err = w.PrepareContext(ctx, insertSQL(1))
	}
	if err != nil {
		s.Close()
		return nil, wrapErr("open "+path+": prepare", err)
	}
	if path == Memory {
		return s, nil
	}

	r, err := sql.Open("sqlite", readerDSN(path))
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	r.SetConnMaxLifetime(0)
	r.SetConnMaxIdleTime(0)
	s.r = r
	if err := r.PingContext(ctx); err != nil {
		s.Close()
		return nil, wrapErr("open "+path+" for reading", err)
	}
	return s, nil
}

// migrateWhenFree migrates, trying again for up to the busy timeout while
// the database is locked. Connections that open a new file at once race
// to switch it to WAL, and the loser is told SQLITE_BUSY at once, not
// after busy_timeout (seen 3 times in 300 opens of four at once).
func migrateWhenFree(ctx context.Context, w *sql.DB) error {
	deadline := time.Now().Add(busyTimeoutMs * time.Millisecond)
	for {
		err := migrate(ctx, w, migrations)
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-time.After(time.Duration(10+rand.IntN(40)) * time.Millisecond):
		case <-ctx.Done():
			return err
		}
	}
}

// writerDSN sets up the writing connection: WAL (persistent in the file, so
// readers opened later inherit it), NORMAL sync, which in WAL mode is durable
// against crashes of the process and consistent across power loss, and
// BEGIN IMMEDIATE so a transaction takes the write lock up front instead of
// failing to upgrade a read lock held by another process.
func writerDSN(path string) string {
	return fmt.Sprintf("%s?_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)"+
		"&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate", path, busyTimeoutMs)
}

// readerDSN sets up the read pool: query_only makes a stray write fail
// rather than contend with the writer.
func readerDSN(path string) string {
	return fmt.Sprintf("%s?_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)"+
		"&_pragma=synchronous(NORMAL)&_pragma=query_only(1)", path, busyTimeoutMs)
}

// Close closes the database. Later calls return the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		for _, st := range []*sql.Stmt{s.insertMany, s.insertOne} {
			if st != nil {
				errs = append(errs, st.Close())
			}
		}
		if s.r != s.w {
			errs = append(errs, s.r.Close())
		}
		s.closeErr = errors.Join(append(errs, s.w.Close())...)
		if s.closeErr != nil {
			s.closeErr = fmt.Errorf("sqlite: close: %w", s.closeErr)
		}
	})
	return s.closeErr
}
