package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// Store keeps functions and their executions. Implementations are safe for
// concurrent use. Errors wrap fn.ErrNotFound, fn.ErrConflict or
// fn.ErrUnavailable where those apply.
type Store interface {
	// CreateFunction inserts f; a taken name is fn.ErrConflict.
	CreateFunction(ctx context.Context, f *fn.Function) error
	// GetFunction finds a function by id, or else by its unique name.
	GetFunction(ctx context.Context, idOrName string) (*fn.Function, error)
	// ListFunctions returns every function, ordered by name.
	ListFunctions(ctx context.Context) ([]*fn.Function, error)
	// UpdateFunction replaces the stored function with f.ID if its stored
	// version is still prevVersion; otherwise fn.ErrConflict (a concurrent
	// update won) or fn.ErrNotFound. A taken name is fn.ErrConflict.
	UpdateFunction(ctx context.Context, f *fn.Function, prevVersion int) error
	// DeleteFunction removes a function and all its executions.
	DeleteFunction(ctx context.Context, id string) error

	// InsertExecutions writes a batch of execution records atomically.
	InsertExecutions(ctx context.Context, execs []*fn.Execution) error
	// ListExecutions returns a function's executions newest first, without
	// their events.
	ListExecutions(ctx context.Context, functionID string, q ExecQuery) ([]*fn.Execution, error)
	// GetExecution returns one execution in full.
	GetExecution(ctx context.Context, functionID, executionID string) (*fn.Execution, error)
	// PruneExecutions deletes all but the newest keep executions of a
	// function and reports how many it deleted.
	PruneExecutions(ctx context.Context, functionID string, keep int) (int64, error)

	// PutBlob stores data under sha256, the lower-case hex SHA-256 of
	// data, which the store checks; storing a blob again is a no-op.
	PutBlob(ctx context.Context, sha256 string, data []byte) error
	// GetBlob returns the blob stored under sha256 (fn.ErrNotFound if
	// none). Callers check its hash: stores may be shared.
	GetBlob(ctx context.Context, sha256 string) ([]byte, error)
	// DeleteBlob removes a blob; a missing one is not an error.
	DeleteBlob(ctx context.Context, sha256 string) error
	// ListBlobs lists every blob, without its data.
	ListBlobs(ctx context.Context) ([]BlobInfo, error)

	Close() error
}

// BlobInfo describes a stored blob: function code or a layer, a zip
// named by its SHA-256.
type BlobInfo struct {
	SHA256    string
	Size      int64
	CreatedAt time.Time
}

// MaxBlobBytes bounds one blob (a code or layer archive, canonical zip).
const MaxBlobBytes = 256 << 20

// CheckBlob checks that data is what sha names and not too large, for
// PutBlob implementations.
func CheckBlob(sha string, data []byte) error {
	if len(data) > MaxBlobBytes {
		return fmt.Errorf("blob of %d bytes is larger than %d: %w", len(data), MaxBlobBytes, fn.ErrTooLarge)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != sha {
		return fmt.Errorf("blob named %.12s… has SHA-256 %.12s…: %w", sha, got, fn.ErrInvalid)
	}
	return nil
}

// ExecQuery selects a page of execution history.
type ExecQuery struct {
	Limit  int       // at most this many (the store may cap it)
	Before string    // only executions with an id lower than this one
	Status fn.Status // only this status, when set
}

// Page sizes of execution history, the same for every Store.
const (
	DefaultExecLimit = 50   // a Limit of 0 (or less) means this many
	MaxExecLimit     = 1000 // a larger Limit is capped to this
)

// PageSize is the number of executions q asks for, default and cap applied.
func (q ExecQuery) PageSize() int {
	if q.Limit <= 0 {
		return DefaultExecLimit
	}
	return min(q.Limit, MaxExecLimit)
}
