package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/store"
)

// PutBlob stores data under sha; a blob stored before stays as it is.
func (s *Store) PutBlob(ctx context.Context, sha string, data []byte) error {
	if err := store.CheckBlob(sha, data); err != nil {
		return fmt.Errorf("sqlite: put blob: %w", err)
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO blobs (sha256, data, created_at) VALUES (?, ?, ?)
		ON CONFLICT (sha256) DO NOTHING`, sha, data, nanos(time.Now()))
	return wrapErr("put blob", err)
}

// GetBlob returns the blob stored under sha.
func (s *Store) GetBlob(ctx context.Context, sha string) ([]byte, error) {
	var data []byte
	err := s.r.QueryRowContext(ctx, `SELECT data FROM blobs WHERE sha256 = ?`, sha).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: get blob %.12s…: %w", sha, fn.ErrNotFound)
	}
	if err != nil {
		return nil, wrapErr("get blob", err)
	}
	return data, nil
}

// DeleteBlob removes the blob stored under sha, if any.
func (s *Store) DeleteBlob(ctx context.Context, sha string) error {
	_, err := s.w.ExecContext(ctx, `DELETE FROM blobs WHERE sha256 = ?`, sha)
	return wrapErr("delete blob", err)
}

// ListBlobs lists every blob without its data.
func (s *Store) ListBlobs(ctx context.Context) ([]store.BlobInfo, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT sha256, length(data), created_at FROM blobs ORDER BY sha256`)
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
