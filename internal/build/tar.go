package build

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strconv"
	"strings"
)

// isTar reports whether block is a tar header (its checksum is right: this
// covers v7, ustar, GNU and PAX alike) or the zero block that ends a tar,
// as the first block of an empty one.
func isTar(block []byte) bool {
	if len(block) < 512 {
		return false
	}
	block = block[:512]
	if !slices.ContainsFunc(block, func(b byte) bool { return b != 0 }) {
		return true
	}
	field := strings.TrimRight(strings.TrimLeft(string(block[148:156]), " \x00"), " \x00")
	want, err := strconv.ParseInt(field, 8, 64)
	if err != nil {
		return false
	}
	var unsigned, signed int64
	for i, b := range block {
		if i >= 148 && i < 156 {
			b = ' '
		}
		unsigned += int64(b)
		signed += int64(int8(b))
	}
	return want == unsigned || want == signed
}

// untarGzip extracts a gzip that must hold a tar.
func (x *extractor) untarGzip(br *bufio.Reader) error {
	gz, err := gzip.NewReader(br)
	if err != nil {
		return x.readFailure("", err)
	}
	inner := bufio.NewReaderSize(gz, 4<<10)
	head, err := inner.Peek(512)
	if err != nil && err != io.EOF {
		return x.readFailure("", err)
	}
	if !isTar(head) {
		return &ArchiveError{Reason: "is a gzip that does not hold a tar; " + accepted}
	}
	return x.untar(inner)
}

// untar extracts the tar stream read from r, then reads what follows the
// tar's end (padding; for a tar.gz, the end of the gzip, which checks its
// checksum) to r's end, within the same cap.
func (x *extractor) untar(r io.Reader) error {
	x.tarCap = &capReader{r: r, limit: x.lim.UnpackedBytes + int64(2*x.lim.Files)*8<<10 + 1<<20}
	tr := tar.NewReader(x.tarCap)
	last := ""
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if last != "" {
				err = fmt.Errorf("after %s: %w", quote(last), err)
			}
			return x.readFailure("", err)
		}
		last = hdr.Name
		if err := x.tarEntry(tr, hdr); err != nil {
			return err
		}
	}
	if _, err := io.CopyBuffer(io.Discard, onlyReader{x.tarCap}, x.buf); err != nil {
		return x.readFailure("", fmt.Errorf("after the tar's end: %w", err))
	}
	return nil
}

// tarEntry writes one tar entry.
func (x *extractor) tarEntry(tr *tar.Reader, hdr *tar.Header) error {
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeCont, tar.TypeGNUSparse:
		return x.file(hdr.Name, fs.FileMode(hdr.Mode&0o777), tr)
	case tar.TypeDir:
		return x.dir(hdr.Name)
	case tar.TypeSymlink:
		return x.symlink(hdr.Name, hdr.Linkname)
	case tar.TypeLink:
		return &ArchiveError{Entry: hdr.Name, Reason: fmt.Sprintf("is a hard link to %s: hard links are not accepted (tar --hard-dereference stores the file itself)", quote(hdr.Linkname))}
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return &ArchiveError{Entry: hdr.Name, Reason: "is a device or a fifo: only files, directories and symlinks are accepted"}
	case tar.TypeXGlobalHeader: // PAX defaults for what follows, as git archive writes
		return nil
	}
	return &ArchiveError{Entry: hdr.Name, Reason: fmt.Sprintf("has the tar type %q: only files, directories and symlinks are accepted", hdr.Typeflag)}
}

// capReader reads at most limit bytes of a decompressed tar stream.
type capReader struct {
	r     io.Reader
	limit int64
	n     int64
	over  bool
}

var errCap = errors.New("tar stream over its cap")

func (c *capReader) Read(p []byte) (int, error) {
	if c.over {
		return 0, errCap
	}
	if rest := c.limit + 1 - c.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := c.r.Read(p)
	if c.n += int64(n); c.n > c.limit {
		c.over = true
		return 0, errCap
	}
	return n, err
}
