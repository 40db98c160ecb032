package driver

import (
	"fmt"
	"os"
	"path"
)

// WriteFiles writes a function's files below dir, creating dir and the
// directories the paths name. Every write goes through an os.Root opened
// on dir, so no name (.., an absolute path, a symlink already there) can
// reach outside it, even one that validation let through: the files may
// come from a store that another writer shares.
func WriteFiles(dir string, files map[string]string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	for p, content := range files {
		if d := path.Dir(p); d != "." {
			if err := root.MkdirAll(d, 0o755); err != nil {
				return fmt.Errorf("write function file %q: %w", p, err)
			}
		}
		if err := root.WriteFile(p, []byte(content), 0o644); err != nil {
			return fmt.Errorf("write function file %q: %w", p, err)
		}
	}
	return nil
}
