package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/nimbusfaas/nimbus/internal/build"
)

// IgnoreFile is the file of a code directory that names what deploy
// leaves out, in gitignore syntax.
const IgnoreFile = ".nimbusignore"

// GitIgnoreFile is read before IgnoreFile: what git leaves out deploy
// leaves out too, unless IgnoreFile re-includes it ("!node_modules/").
// Only the code directory's own is read, not those of its subdirectories.
const GitIgnoreFile = ".gitignore"

// Packed is a code directory packed as the server stores code: the
// canonical zip of package build, and its manifest.
type Packed struct {
	Zip      []byte
	Manifest *build.Manifest
}

// PackDir packs the directory dir, leaving out what its .gitignore and
// .nimbusignore name (the latter's patterns last, so they win), .git, the ignore file itself and the files in skip (absolute
// paths: the spec file when it lies in the directory). Files keep their
// contents and modes and symlinks stay symlinks, so that the zip is
// byte for byte what the server would make of the same tree, and its
// SHA256 is the server's codeInfo.sha256 for it.
func PackDir(dir string, skip ...string) (*Packed, error) {
	ig := &Ignore{}
	for _, name := range []string{GitIgnoreFile, IgnoreFile} {
		f, err := os.Open(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		err = ig.Read(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	skipped := map[string]bool{}
	for _, s := range skip {
		if abs, err := filepath.Abs(s); err == nil {
			skipped[abs] = true
		}
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	files := map[string]build.File{}
	err = filepath.WalkDir(absDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == absDir {
			return nil
		}
		rel, err := filepath.Rel(absDir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		isDir := d.IsDir()
		if rel == ".git" || rel == IgnoreFile || skipped[p] || ig.Match(rel, isDir) {
			if isDir {
				return filepath.SkipDir
			}
			return nil
		}
		switch t := d.Type(); {
		case isDir:
		case t&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			files[rel] = build.File{Data: []byte(target), Mode: fs.ModeSymlink | 0o777}
		case t.IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			files[rel] = build.File{Data: data, Mode: info.Mode().Perm()}
		default:
			return fmt.Errorf("%s: not a file, a directory or a symlink", path.Join(filepath.ToSlash(dir), rel))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", dir, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("pack %s: no files (after %s and %s)", dir, GitIgnoreFile, IgnoreFile)
	}
	var buf bytes.Buffer
	m, err := build.PackFiles(files, &buf)
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", dir, err)
	}
	return &Packed{Zip: buf.Bytes(), Manifest: m}, nil
}
