package build

import (
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// Limits bound one archive. DefaultLimits are Lambda's: a 50 MiB archive,
// 250 MiB unpacked, 20,000 files. A field of zero or less takes its
// DefaultLimits value.
type Limits struct {
	// ArchiveBytes bounds the bytes read from the archive itself.
	ArchiveBytes int64
	// UnpackedBytes bounds the bytes of all files written, counted as they
	// are written (never from headers).
	UnpackedBytes int64
	// Files bounds the files and symlinks written; the directories written,
	// explicit or implied by a path, are bounded by the same number.
	Files int
}

// DefaultLimits are Lambda's limits on a deployment package.
var DefaultLimits = Limits{ArchiveBytes: 50 << 20, UnpackedBytes: 250 << 20, Files: 20000}

// orDefault returns lim with every unset field set from DefaultLimits.
func (lim Limits) orDefault() Limits {
	if lim.ArchiveBytes <= 0 {
		lim.ArchiveBytes = DefaultLimits.ArchiveBytes
	}
	if lim.UnpackedBytes <= 0 {
		lim.UnpackedBytes = DefaultLimits.UnpackedBytes
	}
	if lim.Files <= 0 {
		lim.Files = DefaultLimits.Files
	}
	return lim
}

// File is one file of an in-memory tree given to PackFiles. A Mode with
// fs.ModeSymlink makes it a symlink whose target is Data.
type File struct {
	Data []byte
	Mode fs.FileMode
}

// Manifest describes a tree of code: the archive it came from or was packed
// into, and every file in it.
type Manifest struct {
	// SHA256 is the hex sha256 of the canonical zip (Pack, PackFiles) or of
	// the archive as read (Unpack).
	SHA256 string `json:"sha256"`
	// Size is the bytes of the canonical zip (Pack, PackFiles) or of the
	// archive as read (Unpack).
	Size int64 `json:"size"`
	// UnpackedSize is the bytes of all files together.
	UnpackedSize int64 `json:"unpackedSize"`
	// Files are the regular files and symlinks, sorted by path. Directories
	// are implied by the paths and not listed.
	Files []FileInfo `json:"files"`
}

// FileInfo is one file or symlink of a Manifest.
type FileInfo struct {
	Path   string `json:"path"`   // slash-separated, relative, clean
	Size   int64  `json:"size"`   // 0 for a symlink
	SHA256 string `json:"sha256"` // hex sha256 of the contents; "" for a symlink
	// Mode is 0644 or 0755 for a file (0755 if the archive gave it any
	// execute bit), 0777 for a symlink.
	Mode uint32 `json:"mode"`
	Link string `json:"link,omitempty"` // a symlink's target
}

// ArchiveError names the entry that made an archive unacceptable; it wraps
// fn.ErrInvalid so the API answers 400.
type ArchiveError struct {
	// Entry is the entry's name as the archive spells it; "" when the
	// archive as a whole is refused (not an archive, corrupt, too many
	// entries).
	Entry  string
	Reason string
}

func (e *ArchiveError) Error() string {
	if e.Entry == "" {
		return "archive: " + e.Reason
	}
	return "archive entry " + quote(e.Entry) + ": " + e.Reason
}

// Unwrap makes errors.Is(err, fn.ErrInvalid) true.
func (e *ArchiveError) Unwrap() error { return fn.ErrInvalid }

// quote quotes a name for a message, shortened if it is long: an entry
// name may be anything, NULs and invalid UTF-8 included.
func quote(s string) string {
	if len(s) > 80 {
		return fmt.Sprintf("%q…", s[:80])
	}
	return fmt.Sprintf("%q", s)
}

// The modes files get: any execute bit makes a file 0755, else 0644.
// Nothing is writable by others, nothing setuid.
const (
	modeFile = 0o644
	modeExec = 0o755
	modeDir  = 0o755
	modeLink = 0o777
)

// fileMode is the mode a file of mode m is written and packed with.
func fileMode(m fs.FileMode) fs.FileMode {
	if m&0o111 != 0 {
		return modeExec
	}
	return modeFile
}

// checkName returns why p cannot be a path in a tree of code, or "". The
// rules are those of fn's checkPath for the "files" of the API (kept in
// step by hand; fn does not export them): clean, relative, no "." or ".."
// or empty element, no backslash or NUL, valid UTF-8, at most
// fn.MaxPathLen bytes and fn.MaxPathElemLen per element.
func checkName(p string) string { return fn.PathProblem(p) }

// checkLink returns why a symlink at p cannot point at target, or "". A
// target must be relative and clean (so any ".." leads it, as in
// "../lib/x"), pass the name rules once its leading ".." are set aside, and
// resolve lexically, from the link's directory, inside the tree. Because
// every symlink obeys this, and no entry is written through a symlink, no
// chain of symlinks leads outside either: a ".." only ever climbs from a
// real directory at a known depth.
func checkLink(p, target string) string {
	rest := target
	for rest == ".." || strings.HasPrefix(rest, "../") {
		rest = strings.TrimPrefix(strings.TrimPrefix(rest, ".."), "/")
	}
	switch {
	case target == "":
		return "is a symlink with an empty target"
	case path.Clean(target) != target:
		return fmt.Sprintf("is a symlink to %s, which is not a clean path", quote(target))
	case rest != "" && rest != "." && checkName(rest) != "":
		return fmt.Sprintf("is a symlink to %s, which %s", quote(target), checkName(rest))
	case len(target) > fn.MaxPathLen:
		return fmt.Sprintf("is a symlink to a path of %d bytes, more than %d", len(target), fn.MaxPathLen)
	}
	if to := path.Join(path.Dir(p), target); to == ".." || strings.HasPrefix(to, "../") {
		return fmt.Sprintf("is a symlink to %s, which leads outside the archive", quote(target))
	}
	return ""
}
