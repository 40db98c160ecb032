package storetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"testing"
	"testing/iotest"
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
		if err := h.s.PutBlob(h.ctx, shaOf(b), bytes.NewReader(b)); err != nil {
			t.Fatalf("PutBlob(%d bytes): %v", len(b), err)
		}
		if err := h.s.PutBlob(h.ctx, shaOf(b), iotest.ErrReader(errors.New("read again"))); err != nil {
			t.Fatalf("PutBlob again (the blob is there: nothing is read): %v", err)
		}
		got, size := readBlob(t, h, shaOf(b))
		if !bytes.Equal(got, b) || size != int64(len(b)) {
			t.Fatalf("OpenBlob(%d bytes) = %d bytes, size %d", len(b), len(got), size)
		}
	}
	other := shaOf([]byte("other"))
	if err := h.s.PutBlob(h.ctx, other, bytes.NewReader(big)); !errors.Is(err, fn.ErrInvalid) {
		t.Fatalf("PutBlob under the wrong hash: %v, want ErrInvalid", err)
	}
	if _, _, err := h.s.OpenBlob(h.ctx, other); !errors.Is(err, fn.ErrNotFound) {
		t.Fatalf("a blob refused for its hash is stored: %v", err)
	}
	if err := h.s.PutBlob(h.ctx, other, iotest.TimeoutReader(bytes.NewReader(big))); err == nil {
		t.Fatalf("PutBlob of a reader that fails: no error")
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
	if _, _, err := h.s.OpenBlob(h.ctx, shaOf(big)); !errors.Is(err, fn.ErrNotFound) {
		t.Fatalf("OpenBlob after delete: %v, want ErrNotFound", err)
	}
	if got, _ := readBlob(t, h, shaOf(small)); !bytes.Equal(got, small) {
		t.Fatalf("the other blob after a delete: %q", got)
	}
}

func readBlob(t *testing.T, h *harness, sha string) ([]byte, int64) {
	t.Helper()
	rc, size, err := h.s.OpenBlob(h.ctx, sha)
	if err != nil {
		t.Fatalf("OpenBlob(%.12s): %v", sha, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read blob %.12s: %v", sha, err)
	}
	return b, size
}
