package sqlite

import (
	"errors"
	"fmt"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// wrapErr prefixes err with the operation and, where SQLite's result code
// says what kind of failure it is, wraps the matching fn sentinel too.
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if kind := classify(err); kind != nil {
		return fmt.Errorf("sqlite: %s: %w: %w", op, kind, err)
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

// classify maps SQLite result codes to fn sentinels: a UNIQUE or PRIMARY
// KEY violation is a conflict; a lock that could not be had in time, a full
// disk or an I/O error make the store unavailable.
func classify(err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return nil
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return fn.ErrConflict
	}
	switch se.Code() & 0xff { // the primary code of an extended one
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR:
		return fn.ErrUnavailable
	}
	return nil
}

// isBusy reports whether err is SQLite's "database is locked".
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}
