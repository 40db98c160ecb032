package build

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// The compression-ratio rule: once an entry has inflated past ratioFloor
// bytes, it may not have inflated to more than maxRatio times the
// compressed bytes read for it so far.
const (
	ratioFloor = 1 << 20
	maxRatio   = 1000
)

// unzip copies the zip from br to an unlinked temporary file (archive/zip
// needs an io.ReaderAt), counting on the way the central-directory records
// archive/zip would hold in memory, then extracts it entry by entry.
func (x *extractor) unzip(br *bufio.Reader) error {
	tmp, err := os.CreateTemp("", "nimbus-unpack-*.zip")
	if err != nil {
		return fmt.Errorf("build: spool zip: %w", err)
	}
	defer tmp.Close()
	// Unlinked at once: nothing is left behind, however this ends.
	if err := os.Remove(tmp.Name()); err != nil {
		return fmt.Errorf("build: spool zip: %w", err)
	}
	sig := &signatureCounter{}
	size, err := io.CopyBuffer(io.MultiWriter(tmp, sig), onlyReader{br}, x.buf)
	if err != nil {
		if e := x.src.failure(); e != nil {
			return e
		}
		return fmt.Errorf("build: spool zip: %w", err)
	}
	// archive/zip reads every record it finds, whatever the end record
	// says, and a record costs it several times its bytes; refuse before it
	// reads them if there may be more than the limits could ever allow.
	if most := 2 * x.lim.Files; sig.n > most {
		return &ArchiveError{Reason: fmt.Sprintf("holds more than %d entries: the limits are %d files and %d directories", most, x.lim.Files, x.lim.Files)}
	}
	x.zipFile = &fileReaderAt{f: tmp}
	zr, err := zip.NewReader(x.zipFile, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) { // names are checked below, one by one
		return x.readFailure("", err)
	}
	files := 0
	for _, f := range zr.File {
		if !zipIsDir(f) {
			if files++; files > x.lim.Files {
				return &ArchiveError{Entry: f.Name, Reason: fmt.Sprintf("is one file more than the limit of %d files", x.lim.Files)}
			}
		}
	}
	for _, f := range zr.File {
		if err := x.zipEntry(f); err != nil {
			return err
		}
	}
	return nil
}

func zipIsDir(f *zip.File) bool { return strings.HasSuffix(f.Name, "/") || f.Mode().IsDir() }

// zipEntry writes one zip entry.
func (x *extractor) zipEntry(f *zip.File) error {
	mode := f.Mode()
	switch {
	case zipIsDir(f):
		return x.dir(f.Name)
	case f.Flags&0x1 != 0:
		return &ArchiveError{Entry: f.Name, Reason: "is encrypted"}
	case f.Method != zip.Store && f.Method != zip.Deflate:
		return &ArchiveError{Entry: f.Name, Reason: fmt.Sprintf("is compressed with method %d: only stored and deflated entries are accepted", f.Method)}
	case mode&fs.ModeSymlink != 0:
		r, err := x.openZip(f)
		if err != nil {
			return err
		}
		target, err := io.ReadAll(io.LimitReader(r, fn.MaxPathLen+1))
		if err != nil {
			return x.readFailure(f.Name, err)
		}
		if len(target) > fn.MaxPathLen {
			return &ArchiveError{Entry: f.Name, Reason: fmt.Sprintf("is a symlink to a path of more than %d bytes", fn.MaxPathLen)}
		}
		return x.symlink(f.Name, string(target))
	case mode.Type() == 0:
		r, err := x.openZip(f)
		if err != nil {
			return err
		}
		return x.file(f.Name, mode.Perm(), r)
	}
	return &ArchiveError{Entry: f.Name, Reason: "is a device, a socket or a fifo: only files, directories and symlinks are accepted"}
}

// openZip returns a reader of f's contents that trusts none of its header:
// it inflates the raw data itself, and refuses more bytes than declared, a
// ratio past the rule, fewer bytes than declared and a wrong CRC-32.
func (x *extractor) openZip(f *zip.File) (io.Reader, error) {
	raw, err := f.OpenRaw()
	if err != nil {
		return nil, x.readFailure(f.Name, err)
	}
	e := &zipEntryReader{name: f.Name, raw: &countReader{r: raw}, declared: f.UncompressedSize64, want: f.CRC32, crc: crc32.NewIEEE()}
	e.dec = e.raw
	if f.Method == zip.Deflate {
		if x.zipBuf == nil {
			x.zipBuf = bufio.NewReaderSize(e.raw, 4<<10)
		} else {
			x.zipBuf.Reset(e.raw)
		}
		if x.inflater == nil {
			x.inflater = flate.NewReader(x.zipBuf)
		} else if err := x.inflater.(flate.Resetter).Reset(x.zipBuf, nil); err != nil {
			return nil, x.readFailure(f.Name, err)
		}
		e.dec, e.deflated = x.inflater, true
	}
	return e, nil
}

// zipEntryReader reads one zip entry's contents; see openZip.
type zipEntryReader struct {
	name     string
	raw      *countReader // the compressed bytes
	dec      io.Reader
	deflated bool
	n        uint64
	declared uint64
	want     uint32
	crc      hash.Hash32
}

func (e *zipEntryReader) Read(p []byte) (int, error) {
	n, err := e.dec.Read(p)
	e.n += uint64(n)
	switch {
	case e.n > e.declared:
		return 0, &ArchiveError{Entry: e.name, Reason: fmt.Sprintf("inflates to more than the %d bytes its header declares", e.declared)}
	case e.deflated && e.n > ratioFloor && e.n > maxRatio*e.raw.n:
		return 0, &ArchiveError{Entry: e.name, Reason: fmt.Sprintf("inflates to more than %d times its compressed size (%d bytes from %d), past the first %d bytes", maxRatio, e.n, e.raw.n, ratioFloor)}
	}
	e.crc.Write(p[:n])
	if err == io.EOF {
		if e.n != e.declared {
			return 0, &ArchiveError{Entry: e.name, Reason: fmt.Sprintf("holds %d bytes, fewer than the %d its header declares", e.n, e.declared)}
		}
		// As archive/zip: a writer that could not seek may leave it 0.
		if e.want != 0 && e.crc.Sum32() != e.want {
			return 0, &ArchiveError{Entry: e.name, Reason: "fails its CRC-32 check"}
		}
	}
	return n, err
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n uint64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += uint64(n)
	return n, err
}

// fileReaderAt reads the spooled zip, keeping the first error that is
// neither the end of the file nor a negative offset (which a corrupt
// directory can lead archive/zip to): the machine's fault, not the
// archive's.
type fileReaderAt struct {
	f   *os.File
	err error
}

func (r *fileReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	n, err := r.f.ReadAt(p, off)
	if err != nil && err != io.EOF && r.err == nil {
		r.err = err
	}
	return n, err
}

// centralSignature starts every central-directory record of a zip.
var centralSignature = []byte("PK\x01\x02")

// signatureCounter counts the central-directory signatures written
// through it, those split across writes included. Every record archive/zip
// reads starts with one, so their count bounds the records it will hold.
type signatureCounter struct {
	tail  [3]byte // the last bytes written
	ntail int
	n     int
}

func (s *signatureCounter) Write(p []byte) (int, error) {
	// A signature split across writes lies in the last 3 bytes before p
	// and the first 3 of p; one wholly in p is counted in p.
	var edge [6]byte
	k := copy(edge[:], s.tail[:s.ntail])
	k += copy(edge[k:], p[:min(3, len(p))])
	s.n += bytes.Count(edge[:k], centralSignature) + bytes.Count(p, centralSignature)
	if len(p) >= 3 {
		s.ntail = copy(s.tail[:], p[len(p)-3:])
	} else {
		s.ntail = copy(s.tail[:], edge[max(0, k-3):k])
	}
	return len(p), nil
}
