package storetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

func shaOf(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// testCodeRoundTrip stores a function whose code is a blob, with layers,
// build settings and a build status, and a file that is not UTF-8.
func testCodeRoundTrip(t *testing.T, h *harness) {
	f := newFunction("coded")
	f.Files = map[string]string{"main.py": "def handler(e, c):\\n    return e\\n", "data.bin": "\\xff\\x00\\xfe"}
	f.CodeInfo = &fn.CodeInfo{SHA256: shaOf([]byte("zip")), Size: 3, UnpackedSize: 40, Files: []fn.FileInfo{
		{Path: "main.py", Size: 37, SHA256: shaOf([]byte("a")), Mode: 0o644},
		{Path: "run.sh", Size: 3, SHA256: shaOf([]byte("b")), Mode: 0o755},
		{Path: "x", Link: "run.sh", Mode: 0o777},
	}}
	f.Layers = []string{shaOf([]byte("layer"))}
	f.Build = &fn.BuildSettings{Scripts: true}
	f.BuildStatus = &fn.BuildStatus{State: fn.BuildFailed, CodeSHA256: shaOf([]byte("zip2")), Layer: "k", Error: "boom",
		Log: "line 1\\nline 2\\n", StartedAt: time.Unix(1700000000, 0).UTC(), FinishedAt: time.Unix(1700000001, 0).UTC()}
	h.createFunction(t, f)
	got, err := h.s.GetFunction(h.ctx, f.ID)
	if err != nil {
		t.Fatal(err)
	}
	assertFunction(t, got, f)
}

// testBlobs stores, reads, lists and deletes blobs, of one chunk and of
// several (more than MongoDB's 16 MiB document), and refuses a blob whose
// bytes are not what its name says.
func testBlobs(t *testing.T, h *harness) {
	small := []byte("PK\\x03\\x04 small blob")
	big := make([]byte, 17<<20+123)
	for i := range big {
		big[i] = byte(i * 7)
	}
	empty := []byte{}
	for _, b := range [][]byte{small, big, empty} {
		if err := h.s.PutBlob(h.ctx, shaOf(b), b); err != nil {
			t.Fatalf("PutBlob(%d bytes): %v", len(b), err)
		}
		if err := h.s.PutBlob(h.ctx, shaOf(b), b); err != nil {
			t.Fatalf("PutBlob again: %v", err)
		}
		got, err := h.s.GetBlob(h.ctx, shaOf(b))
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("GetBlob(%d bytes) = %d bytes, %v", len(b), len(got), err)
		}
	}
	if err := h.s.PutBlob(h.ctx, shaOf([]byte("other")), small); !errors.Is(err, fn.ErrInvalid) {
		t.Fatalf("PutBlob under the wrong hash: %v, want ErrInvalid", err)
	}
	list, err := h.s.ListBlobs(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	sizes := map[string]int64{}
	for _, b := range list {
		sizes[b.SHA256] = b.Size
		if time.Since(b.CreatedAt) > time.Hour || b.CreatedAt.IsZero() {
			t.Errorf("blob %s created at %v", b.SHA256, b.CreatedAt)
		}
	}
	if len(list) != 3 || sizes[shaOf(big)] != int64(len(big)) || sizes[shaOf(small)] != int64(len(small)) {
		t.Fatalf("ListBlobs = %+v", list)
	}
	if err := h.s.DeleteBlob(h.ctx, shaOf(big)); err != nil {
		t.Fatal(err)
	}
	if err := h.s.DeleteBlob(h.ctx, shaOf(big)); err != nil {
		t.Fatalf("DeleteBlob of a missing blob: %v", err)
	}
	if _, err := h.s.GetBlob(h.ctx, shaOf(big)); !errors.Is(err, fn.ErrNotFound) {
		t.Fatalf("GetBlob after delete: %v, want ErrNotFound", err)
	}
	if got, err := h.s.GetBlob(h.ctx, shaOf(small)); err != nil || !bytes.Equal(got, small) {
		t.Fatalf("the other blob after a delete: %q, %v", got, err)
	}
}
