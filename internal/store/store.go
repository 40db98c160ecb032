package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
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
	// DeleteFunction removes a function and all its executions, versions
	// and aliases.
	DeleteFunction(ctx context.Context, id string) error

	// CreateVersion stores a published version of a function (its
	// number is v.Version, its function v.ID). A taken number is
	// fn.ErrConflict; a function that does not exist, fn.ErrNotFound.
	CreateVersion(ctx context.Context, v *fn.Version) error
	// GetVersion returns a function's version by number.
	GetVersion(ctx context.Context, functionID string, number int) (*fn.Version, error)
	// ListVersions returns a function's versions, oldest first.
	ListVersions(ctx context.Context, functionID string) ([]*fn.Version, error)
	// DeleteVersion removes a version (fn.ErrNotFound if there is none).
	DeleteVersion(ctx context.Context, functionID string, number int) error

	// CreateAlias stores a new alias; a taken name is fn.ErrConflict, a
	// function that does not exist fn.ErrNotFound.
	CreateAlias(ctx context.Context, a *fn.Alias) error
	// GetAlias returns a function's alias by name.
	GetAlias(ctx context.Context, functionID, name string) (*fn.Alias, error)
	// ListAliases returns a function's aliases, ordered by name.
	ListAliases(ctx context.Context, functionID string) ([]*fn.Alias, error)
	// UpdateAlias replaces the alias a.FunctionID/a.Name if its stored
	// revision is still prevRevision; otherwise fn.ErrConflict (or
	// fn.ErrNotFound).
	UpdateAlias(ctx context.Context, a *fn.Alias, prevRevision int) error
	// DeleteAlias removes an alias (fn.ErrNotFound if there is none).
	DeleteAlias(ctx context.Context, functionID, name string) error

	// InsertExecutions writes a batch of execution records. The records
	// of an async call share one id: queued (attempt 0), then running and
	// a final status for each attempt n. A record whose id is already
	// stored replaces the stored one if and only if its (attempt, stage)
	// is greater, stage being 0 for queued, 1 for running and 2 for any
	// final status; otherwise it is skipped without error. Records of one
	// id may come in any order, in one batch or several, and writing a
	// batch again (after a partial failure) changes nothing. A negative
	// attempt is fn.ErrInvalid.
	InsertExecutions(ctx context.Context, execs []*fn.Execution) error
	// ListExecutions returns a function's executions newest first, without
	// their events.
	ListExecutions(ctx context.Context, functionID string, q ExecQuery) ([]*fn.Execution, error)
	// GetExecution returns one execution in full.
	GetExecution(ctx context.Context, functionID, executionID string) (*fn.Execution, error)
	// PruneExecutions deletes all but the newest keep executions of a
	// function and reports how many it deleted.
	PruneExecutions(ctx context.Context, functionID string, keep int) (int64, error)

	// PutBlob stores what r holds under sha256, the lower-case hex
	// SHA-256 of it, which the store checks as it reads (a mismatch is
	// fn.ErrInvalid and stores nothing); a blob stored before is kept and
	// r is not read. r should be local (a file): a store may hold a lock
	// while it reads.
	PutBlob(ctx context.Context, sha256 string, r io.Reader) error
	// OpenBlob opens the blob stored under sha256 (fn.ErrNotFound if none)
	// and says its size. Readers check its hash: stores may be shared.
	OpenBlob(ctx context.Context, sha256 string) (io.ReadCloser, int64, error)
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

// BlobChunk is the size of the pieces stores keep blobs in: one
// document of MongoDB holds at most 16 MiB, and a piece at a time keeps
// reads and writes of large blobs to bounded memory.
const BlobChunk = 1 << 20

// BlobChunks reads r in pieces of BlobChunk bytes and hands each to put
// with its number, checking as it goes that r stays within MaxBlobBytes
// and, at the end, that it hashes to sha. It returns the size read.
// An empty r gives one empty piece. PutBlob implementations use it.
func BlobChunks(sha string, r io.Reader, put func(n int, chunk []byte) error) (int64, error) {
	if len(sha) != 64 || strings.Trim(sha, "0123456789abcdef") != "" {
		return 0, fmt.Errorf("blob name %q is not a SHA-256: %w", sha, fn.ErrInvalid)
	}
	h := sha256.New()
	buf := make([]byte, BlobChunk)
	var size int64
	for n := 0; ; n++ {
		k, err := io.ReadFull(r, buf)
		if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
			return size, fmt.Errorf("read blob: %w", err)
		}
		if k == 0 && n > 0 {
			break
		}
		if size += int64(k); size > MaxBlobBytes {
			return size, fmt.Errorf("blob larger than %d bytes: %w", MaxBlobBytes, fn.ErrTooLarge)
		}
		h.Write(buf[:k])
		if err := put(n, buf[:k]); err != nil {
			return size, err
		}
		if k < len(buf) {
			break
		}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sha {
		return size, fmt.Errorf("blob named %.12s… has SHA-256 %.12s…: %w", sha, got, fn.ErrInvalid)
	}
	return size, nil
}

// ChunkReader reads a blob of chunks pieces, asking read for each in
// order, only when the reader needs it. OpenBlob implementations use it.
func ChunkReader(ctx context.Context, chunks int, read func(ctx context.Context, n int) ([]byte, error)) io.ReadCloser {
	return &chunkReader{ctx: ctx, chunks: chunks, read: read}
}

type chunkReader struct {
	ctx    context.Context
	chunks int
	next   int
	cur    []byte
	read   func(ctx context.Context, n int) ([]byte, error)
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.cur) == 0 {
		if c.next >= c.chunks {
			return 0, io.EOF
		}
		b, err := c.read(c.ctx, c.next)
		if err != nil {
			return 0, err
		}
		c.cur, c.next = b, c.next+1
	}
	n := copy(p, c.cur)
	c.cur = c.cur[n:]
	return n, nil
}

func (c *chunkReader) Close() error { c.cur, c.next = nil, c.chunks; return nil }

// ExecQuery selects a page of execution history.
type ExecQuery struct {
	Limit  int       // at most this many (the store may cap it)
	Before string    // only executions with an id lower than this one
	Status fn.Status // only this status, when set
	// Version, when set, keeps only the executions of that published
	// version; VersionSet with Version 0 keeps those of the draft.
	Version    int
	VersionSet bool
	// Since and Until, when set, keep the executions that started at or
	// after Since and before Until.
	Since, Until time.Time
	// Text, when set, keeps the executions whose logs, error type or
	// error message contain it, ignoring the case of ASCII letters. A
	// store looks for it among no more than MaxTextScan executions: the
	// newest that pass the other filters. A page with fewer matches than
	// asked for may thus not be the last: narrow Until to search older.
	Text string
}

// MaxTextScan bounds the executions one text search reads, so that a
// search of a function with millions of executions stays a bounded scan.
const MaxTextScan = 5000

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
