package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/store"
)

// PutBlob stores what r holds under sha, a piece at a time, each piece
// its own write, so that other writes (execution records) go on between
// them; the blob's row comes last. A blob stored before stays as it is.
func (s *Store) PutBlob(ctx context.Context, sha string, r io.Reader) error {
	var one int
	err := s.r.QueryRowContext(ctx, `SELECT 1 FROM blobs WHERE sha256 = ?`, sha).Scan(&one)
	if err == nil {
		return nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return wrapErr("put blob", err)
	}
	chunks := 0
	size, err := store.BlobChunks(sha, r, func(n int, chunk []byte) error {
		chunks = n + 1
		_, err := s.w.ExecContext(ctx, `INSERT OR REPLACE INTO blob_chunks (sha256, n, data) VALUES (?, ?, ?)`, sha, n, chunk)
		return wrapErr("put blob", err)
	})
	if err == nil {
		_, err = s.w.ExecContext(ctx, `INSERT INTO blobs (sha256, data, created_at, chunks, size) VALUES (?, x'', ?, ?, ?)
			ON CONFLICT (sha256) DO NOTHING`, sha, nanos(time.Now()), chunks, size)
		err = wrapErr("put blob", err)
	}
	if err != nil {
		// Pieces without their row are never read; remove them unless the
		// blob was stored meanwhile by another writer.
		_, _ = s.w.ExecContext(context.WithoutCancel(ctx), `DELETE FROM blob_chunks WHERE sha256 = ?
			AND NOT EXISTS (SELECT 1 FROM blobs WHERE sha256 = ?)`, sha, sha)
		return fmt.Errorf("sqlite: put blob: %w", err)
	}
	return nil
}

// OpenBlob opens the blob stored under sha; its pieces are read one at a
// time, as the reader needs them.
func (s *Store) OpenBlob(ctx context.Context, sha string) (io.ReadCloser, int64, error) {
	var (
		data         []byte
		chunks, size int64
	)
	err := s.r.QueryRowContext(ctx, `SELECT data, chunks, size FROM blobs WHERE sha256 = ?`, sha).Scan(&data, &chunks, &size)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, fmt.Errorf("sqlite: blob %.12s…: %w", sha, fn.ErrNotFound)
	}
	if err != nil {
		return nil, 0, wrapErr("open blob", err)
	}
	if chunks == 0 { // written whole, by schema step 6
		return io.NopCloser(bytes.NewReader(data)), int64(len(data)), nil
	}
	return store.ChunkReader(ctx, int(chunks), func(ctx context.Context, n int) ([]byte, error) {
		var b []byte
		err := s.r.QueryRowContext(ctx, `SELECT data FROM blob_chunks WHERE sha256 = ? AND n = ?`, sha, n).Scan(&b)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("sqlite: blob %.12s…: piece %d is missing", sha, n)
		}
		return b, wrapErr("read blob", err)
	}), size, nil
}

// DeleteBlob removes the blob stored under sha, if any: its row first, so
// that a half-deleted blob is never read.
func (s *Store) DeleteBlob(ctx context.Context, sha string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM blobs WHERE sha256 = ?`, sha); err != nil {
		return wrapErr("delete blob", err)
	}
	_, err := s.w.ExecContext(ctx, `DELETE FROM blob_chunks WHERE sha256 = ?`, sha)
	return wrapErr("delete blob", err)
}

// ListBlobs lists every blob without its data.
func (s *Store) ListBlobs(ctx context.Context) ([]store.BlobInfo, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT sha256, size, created_at FROM blobs ORDER BY sha256`)
	if err != nil {
		return nil, wrapErr("list blobs", err)
	}
	defer rows.Close()
	var out []store.BlobInfo
	for rows.Next() {
		var b store.BlobInfo
		var created int64
		if err := rows.Scan(&b.SHA256, &b.Size, &created); err != nil {
			return nil, wrapErr("list blobs", err)
		}
		b.CreatedAt = fromNanos(created)
		out = append(out, b)
	}
	return out, wrapErr("list blobs", rows.Err())
}
