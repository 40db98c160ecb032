package functions

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// Default grace periods of Collect (Config.BlobGrace, DirGrace): a blob
// no function uses is deleted once it is BlobGrace old (an uploaded layer
// must be attached to a function within it), and an unpacked directory no
// function uses once it has not been used for DirGrace (instances of a
// version being replaced may still run from it).
const (
	BlobGrace = 24 * time.Hour
	DirGrace  = 10 * time.Minute
)

// Collector is a Builder that can delete the layers no function uses.
type Collector interface {
	Collect(keep map[string]bool) (removed []string, err error)
}

// Collect deletes the stored blobs and the directories of this node (code,
// uploaded and built layers) that no function uses any more, past their
// grace periods. Blobs shared with other servers (MongoDB) are kept while
// any server's function uses them: functions are read from the store.
func (s *Service) Collect(ctx context.Context) error {
	fs, err := s.cfg.Store.ListFunctions(ctx)
	if err != nil {
		return fmt.Errorf("collect: %w", err)
	}
	used, layers := map[string]bool{}, map[string]bool{}
	// Published versions keep their code and layers too.
	var versions []*fn.Function
	for _, f := range fs {
		vs, err := s.cfg.Store.ListVersions(ctx, f.ID)
		if err != nil {
			return fmt.Errorf("collect: %w", err)
		}
		for _, v := range vs {
			if v.Function != nil {
				versions = append(versions, v.Function)
			}
		}
	}
	for _, f := range append(fs, versions...) {
		if f.CodeInfo != nil {
			used[f.CodeInfo.SHA256] = true
			if f.CodeInfo.Layer != "" {
				layers[f.CodeInfo.Layer] = true
			}
		}
		if f.BuildStatus != nil && f.BuildStatus.CodeSHA256 != "" {
			used[f.BuildStatus.CodeSHA256] = true
		}
		for _, l := range f.Layers {
			used[l] = true
		}
	}
	blobs, err := s.cfg.Store.ListBlobs(ctx)
	if err != nil {
		return fmt.Errorf("collect: %w", err)
	}
	deleted := 0
	for _, b := range blobs {
		if !used[b.SHA256] && time.Since(b.CreatedAt) > s.cfg.BlobGrace {
			if err := s.cfg.Store.DeleteBlob(ctx, b.SHA256); err != nil {
				return fmt.Errorf("collect: %w", err)
			}
			deleted++
		}
	}
	dirs := 0
	for _, root := range []string{s.cfg.CodeDir, s.cfg.LayerDir} {
		n, err := collectDirs(root, used, s.cfg.DirGrace)
		if err != nil {
			return fmt.Errorf("collect: %w", err)
		}
		dirs += n
	}
	if c, ok := s.cfg.Builder.(Collector); ok {
		removed, err := c.Collect(layers)
		if err != nil {
			return fmt.Errorf("collect: %w", err)
		}
		dirs += len(removed)
	}
	if deleted > 0 || dirs > 0 {
		s.log.Info("unused code collected", "blobs", deleted, "directories", dirs)
	}
	return nil
}

// collectDirs removes the directories below root named by a hash that is
// not used, and whose last change is older than grace, and leftovers
// of unpacking (".unpack-…", ".in-…") as old.
func collectDirs(root string, used map[string]bool, grace time.Duration) (int, error) {
	entries, err := os.ReadDir(root)
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || (used[name] && fn.IsSHA256(name)) {
			continue
		}
		if !fn.IsSHA256(name) && !strings.HasPrefix(name, ".") {
			continue // not ours
		}
		fi, err := e.Info()
		if err != nil || time.Since(fi.ModTime()) < grace {
			continue
		}
		if err := os.RemoveAll(filepath.Join(root, name)); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
