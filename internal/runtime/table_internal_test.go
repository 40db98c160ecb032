package runtime

import "testing"

// TestTableSources checks every file a descriptor names is embedded.
func TestTableSources(t *testing.T) {
	for _, r := range table {
		if r.Relayed() {
			continue // no files of its own: the relay is the server's binary
		}
		names := []string{r.Shim}
		if r.Zygote != "" {
			names = append(names, r.Zygote)
		}
		if r.Check != nil {
			names = append(names, r.Check.Script)
		}
		for _, n := range names {
			if b, err := sources.ReadFile(r.Dir + "/" + n); err != nil || len(b) == 0 {
				t.Errorf("%s: %s/%s: %v", r.Name, r.Dir, n, err)
			}
		}
	}
}
