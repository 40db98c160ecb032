package mongo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/store"
)

// Blobs are split into chunks of blobChunk bytes, each a document of the
// blobChunks collection, because one document holds at most 16 MiB. A
// blob's document in blobs is written after all its chunks: a blob is
// stored once its document exists. (GridFS does the same; FerretDB v1,
// which the tests run, does not serve it.)
const (
	blobsColl      = "blobs"
	blobChunksColl = "blobChunks"
	blobChunk      = 1 << 20
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

// PutBlob stores data under sha; a blob stored before stays as it is.
func (s *Store) PutBlob(ctx context.Context, sha string, data []byte) error {
	if err := store.CheckBlob(sha, data); err != nil {
		return fmt.Errorf("mongo: put blob: %w", err)
	}
	blobs, chunks := s.db.Collection(blobsColl), s.db.Collection(blobChunksColl)
	if n, err := blobs.CountDocuments(ctx, bson.D{{Key: "_id", Value: sha}}); err != nil {
		return s.wrapErr("put blob", err)
	} else if n > 0 {
		return nil
	}
	n := 0
	for off := 0; off < len(data) || n == 0; off += blobChunk {
		end := min(off+blobChunk, len(data))
		_, err := chunks.ReplaceOne(ctx, bson.D{{Key: "_id", Value: chunkID(sha, n)}},
			chunkDoc{ID: chunkID(sha, n), N: n, Data: data[off:end]}, options.Replace().SetUpsert(true))
		if err != nil {
			return s.wrapErr("put blob", err)
		}
		n++
	}
	_, err := blobs.InsertOne(ctx, blobDoc{SHA256: sha, Size: int64(len(data)), Chunks: n, CreatedAt: time.Now().UTC()})
	if duplicateKey(err) {
		return nil // stored meanwhile by another writer, with the same bytes
	}
	return s.wrapErr("put blob", err)
}

// GetBlob returns the blob stored under sha.
func (s *Store) GetBlob(ctx context.Context, sha string) ([]byte, error) {
	var d blobDoc
	err := s.db.Collection(blobsColl).FindOne(ctx, bson.D{{Key: "_id", Value: sha}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("mongo: get blob %.12s…: %w", sha, fn.ErrNotFound)
	}
	if err != nil {
		return nil, s.wrapErr("get blob", err)
	}
	if d.Size < 0 || d.Size > store.MaxBlobBytes {
		return nil, fmt.Errorf("mongo: get blob %.12s…: stored size %d is not possible", sha, d.Size)
	}
	var buf bytes.Buffer
	buf.Grow(int(d.Size))
	for n := 0; n < d.Chunks; n++ {
		var c chunkDoc
		if err := s.db.Collection(blobChunksColl).FindOne(ctx, bson.D{{Key: "_id", Value: chunkID(sha, n)}}).Decode(&c); err != nil {
			return nil, s.wrapErr(fmt.Sprintf("get blob %.12s… chunk %d", sha, n), err)
		}
		if int64(buf.Len()+len(c.Data)) > d.Size {
			return nil, fmt.Errorf("mongo: get blob %.12s…: chunks exceed its size %d", sha, d.Size)
		}
		buf.Write(c.Data)
	}
	return buf.Bytes(), nil
}

// DeleteBlob removes the blob stored under sha, if any: its document
// first, so that a half-deleted blob is never read.
func (s *Store) DeleteBlob(ctx context.Context, sha string) error {
	if _, err := s.db.Collection(blobsColl).DeleteOne(ctx, bson.D{{Key: "_id", Value: sha}}); err != nil {
		return s.wrapErr("delete blob", err)
	}
	_, err := s.db.Collection(blobChunksColl).DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{
		{Key: "$gte", Value: sha + "/"}, {Key: "$lt", Value: sha + "0"}}}})
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
