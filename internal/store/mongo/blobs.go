package mongo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/store"
)

// Blobs are split into chunks of store.BlobChunk bytes, each a document of the
// blobChunks collection, because one document holds at most 16 MiB. A
// blob's document in blobs is written after all its chunks: a blob is
// stored once its document exists. (GridFS does the same; FerretDB v1,
// which the tests run, does not serve it.)
const (
	blobsColl      = "blobs"
	blobChunksColl = "blobChunks"
)

type blobDoc struct {
	SHA256    string    `bson:"_id"`
	Size      int64     `bson:"size"`
	Chunks    int       `bson:"chunks"`
	CreatedAt time.Time `bson:"createdAt"`
}

type chunkDoc struct {
	ID   string `bson:"_id"` // sha256/n
	N    int    `bson:"n"`
	Data []byte `bson:"data"`
}

func chunkID(sha string, n int) string { return fmt.Sprintf("%s/%06d", sha, n) }

// PutBlob stores what r holds under sha, a piece at a time; the blob's
// document comes last. A blob stored before stays as it is.
func (s *Store) PutBlob(ctx context.Context, sha string, r io.Reader) error {
	blobs, chunks := s.db.Collection(blobsColl), s.db.Collection(blobChunksColl)
	if n, err := blobs.CountDocuments(ctx, bson.D{{Key: "_id", Value: sha}}); err != nil {
		return s.wrapErr("put blob", err)
	} else if n > 0 {
		return nil
	}
	count := 0
	size, err := store.BlobChunks(sha, r, func(n int, chunk []byte) error {
		count = n + 1
		_, err := chunks.ReplaceOne(ctx, bson.D{{Key: "_id", Value: chunkID(sha, n)}},
			chunkDoc{ID: chunkID(sha, n), N: n, Data: chunk}, options.Replace().SetUpsert(true))
		return s.wrapErr("put blob", err)
	})
	if err == nil {
		_, err = blobs.InsertOne(ctx, blobDoc{SHA256: sha, Size: size, Chunks: count, CreatedAt: time.Now().UTC()})
		if duplicateKey(err) {
			return nil // stored meanwhile by another writer, with the same bytes
		}
		err = s.wrapErr("put blob", err)
	}
	if err != nil {
		if n, cerr := blobs.CountDocuments(context.WithoutCancel(ctx), bson.D{{Key: "_id", Value: sha}}); cerr == nil && n == 0 {
			_, _ = chunks.DeleteMany(context.WithoutCancel(ctx), chunkRange(sha))
		}
		return fmt.Errorf("mongo: put blob: %w", err)
	}
	return nil
}

// OpenBlob opens the blob stored under sha; its pieces are read one at a
// time, as the reader needs them.
func (s *Store) OpenBlob(ctx context.Context, sha string) (io.ReadCloser, int64, error) {
	var d blobDoc
	err := s.db.Collection(blobsColl).FindOne(ctx, bson.D{{Key: "_id", Value: sha}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, 0, fmt.Errorf("mongo: blob %.12s…: %w", sha, fn.ErrNotFound)
	}
	if err != nil {
		return nil, 0, s.wrapErr("open blob", err)
	}
	if d.Size < 0 || d.Size > store.MaxBlobBytes || d.Chunks < 0 {
		return nil, 0, fmt.Errorf("mongo: blob %.12s…: stored size %d is not possible", sha, d.Size)
	}
	return store.ChunkReader(ctx, d.Chunks, func(ctx context.Context, n int) ([]byte, error) {
		var c chunkDoc
		if err := s.db.Collection(blobChunksColl).FindOne(ctx, bson.D{{Key: "_id", Value: chunkID(sha, n)}}).Decode(&c); err != nil {
			return nil, s.wrapErr(fmt.Sprintf("read blob %.12s… piece %d", sha, n), err)
		}
		return c.Data, nil
	}), d.Size, nil
}

// chunkRange selects the pieces of blob sha.
func chunkRange(sha string) bson.D {
	return bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: sha + "/"}, {Key: "$lt", Value: sha + "0"}}}}
}

// DeleteBlob removes the blob stored under sha, if any: its document
// first, so that a half-deleted blob is never read.
func (s *Store) DeleteBlob(ctx context.Context, sha string) error {
	if _, err := s.db.Collection(blobsColl).DeleteOne(ctx, bson.D{{Key: "_id", Value: sha}}); err != nil {
		return s.wrapErr("delete blob", err)
	}
	_, err := s.db.Collection(blobChunksColl).DeleteMany(ctx, chunkRange(sha))
	return s.wrapErr("delete blob", err)
}

// ListBlobs lists every blob without its data.
func (s *Store) ListBlobs(ctx context.Context) ([]store.BlobInfo, error) {
	cur, err := s.db.Collection(blobsColl).Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, s.wrapErr("list blobs", err)
	}
	var docs []blobDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, s.wrapErr("list blobs", err)
	}
	out := make([]store.BlobInfo, len(docs))
	for i, d := range docs {
		out[i] = store.BlobInfo{SHA256: d.SHA256, Size: d.Size, CreatedAt: d.CreatedAt.UTC()}
	}
	return out, nil
}
