package build

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"
)

// cpioEntry is one member of an initramfs.
type cpioEntry struct {
	name  string // without a leading slash
	mode  uint32 // type and permission bits, as in stat(2)
	data  []byte
	major uint32 // of a device node
	minor uint32
}

const (
	modeDir  = 0o040000
	modeReg  = 0o100000
	modeChar = 0o020000
)

// writeCpio writes entries as an uncompressed "newc" cpio archive, the
// format the kernel unpacks into its initial root file system. Parent
// directories are added as needed; uncompressed, the guest spends no time
// unpacking it.
func writeCpio(w io.Writer, entries []cpioEntry) error {
	all := map[string]cpioEntry{}
	for _, e := range entries {
		all[e.name] = e
		for dir := e.name; ; {
			i := strings.LastIndexByte(dir, '/')
			if i < 0 {
				break
			}
			dir = dir[:i]
			if _, ok := all[dir]; !ok {
				all[dir] = cpioEntry{name: dir, mode: modeDir | 0o755}
			}
		}
	}
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names) // parents before children
	var buf bytes.Buffer
	ino := uint32(1)
	for _, n := range append(names, "TRAILER!!!") {
		e, ok := all[n]
		if !ok {
			e = cpioEntry{name: n}
		}
		nlink := uint32(1)
		if e.mode&modeDir != 0 {
			nlink = 2
		}
		fmt.Fprintf(&buf, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			ino, e.mode, 0, 0, nlink, 0, len(e.data), 0, 0, e.major, e.minor, len(e.name)+1, 0)
		buf.WriteString(e.name)
		buf.WriteByte(0)
		pad(&buf)
		buf.Write(e.data)
		pad(&buf)
		ino++
	}
	_, err := w.Write(buf.Bytes())
	return err
}

func pad(b *bytes.Buffer) {
	for b.Len()%4 != 0 {
		b.WriteByte(0)
	}
}
