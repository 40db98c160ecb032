package mongo

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// wrapErr prefixes err with the operation and wraps the fn sentinel for its
// kind: a duplicate key is fn.ErrConflict; an unreachable server, a network
// error or a timeout is fn.ErrUnavailable, said plainly first.
func (s *Store) wrapErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case duplicateKey(err):
		return fmt.Errorf("mongo: %s: %w: %w", op, fn.ErrConflict, err)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("mongo: %s: %w", op, err) // the caller went away
	case unavailable(err):
		return fmt.Errorf("mongo: %s: MongoDB at %s is %w: %w", op, s.where, fn.ErrUnavailable, err)
	}
	return fmt.Errorf("mongo: %s: %w", op, err)
}

// duplicateKey reports whether err is a unique index violation. FerretDB
// v1 on SQLite reports one met by an update as an InternalError that quotes
// SQLite's message rather than as E11000.
func duplicateKey(err error) bool {
	if mongo.IsDuplicateKeyError(err) {
		return true
	}
	var se mongo.ServerError
	return errors.As(err, &se) && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// transientCodes are server error codes that mean "not now" rather than
// "not ever": shutting down, stepping down, no primary, time limits.
var transientCodes = map[int32]bool{
	6:     true, // HostUnreachable
	7:     true, // HostNotFound
	89:    true, // NetworkTimeout
	91:    true, // ShutdownInProgress
	189:   true, // PrimarySteppedDown
	262:   true, // ExceededTimeLimit
	9001:  true, // SocketException
	10107: true, // NotWritablePrimary
	11600: true, // InterruptedAtShutdown
	11602: true, // InterruptedDueToReplStateChange
	13435: true, // NotPrimaryNoSecondaryOk
	13436: true, // NotPrimaryOrSecondary
}

// unavailable reports whether err means the database cannot be reached or
// answer in time now, and may later.
func unavailable(err error) bool {
	if mongo.IsNetworkError(err) || mongo.IsTimeout(err) {
		return true
	}
	var sse topology.ServerSelectionError
	if errors.As(err, &sse) {
		return true
	}
	var ce topology.ConnectionError
	if errors.As(err, &ce) {
		return true
	}
	var le mongo.LabeledError
	if errors.As(err, &le) && (le.HasErrorLabel("RetryableWriteError") || le.HasErrorLabel("TransientTransactionError")) {
		return true
	}
	var se mongo.ServerError
	if errors.As(err, &se) {
		for code := range transientCodes {
			if se.HasErrorCode(int(code)) {
				return true
			}
		}
	}
	return false
}

// duplicateIDs says which writes of a bulk write failed for a duplicate
// key (their indexes, in order), if those are its only failures and there
// is no write concern error: ok is false for any other error. A nil err
// is ok, with none.
func duplicateIDs(err error) (dups []int, ok bool) {
	if err == nil {
		return nil, true
	}
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return nil, false
	}
	for _, we := range bwe.WriteErrors {
		// FerretDB v1 on SQLite may report one as an InternalError
		// quoting SQLite's message (see duplicateKey).
		if we.Code != 11000 && !strings.Contains(we.Message, "UNIQUE constraint failed") {
			return nil, false
		}
		dups = append(dups, we.Index)
	}
	return dups, true
}
