package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// What deploy does to one function.
const (
	ActionCreate    = "create"
	ActionUpdate    = "update"
	ActionUnchanged = "unchanged"
	ActionDelete    = "delete"
)

// Step is what deploy does, or would do, to one function.
type Step struct {
	Name    string   `json:"name"`
	Action  string   `json:"action"`
	Changes []string `json:"changes,omitempty"` // the fields that differ, "code" for the code
	URL     string   `json:"url,omitempty"`     // its URL, when url.enabled
	// Version and Alias are the version deploy --publish published (or
	// found already published) and the alias it pointed at it.
	Version int    `json:"version,omitempty"`
	Alias   string `json:"alias,omitempty"`

	fn     *SpecFunction
	packed *Packed
	patch  map[string]any // the settings that differ
	cur    *fn.Function   // the server's, when it has the function
}

// Plan compares a spec with the server: each function of the spec is
// created, updated or unchanged, and with prune each function of the
// server the spec does not name is deleted.
func Plan(ctx context.Context, c *Client, s *Spec, prune bool) ([]*Step, error) {
	var steps []*Step
	for i := range s.Functions {
		sf := &s.Functions[i]
		packed, err := PackDir(sf.CodeDir, s.Path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", sf.Name, err)
		}
		st := &Step{Name: sf.Name, fn: sf, packed: packed}
		raw, cur, err := c.GetFunction(ctx, sf.Name)
		switch {
		case errors.Is(err, fn.ErrNotFound):
			st.Action, st.patch = ActionCreate, sf.Settings
		case err != nil:
			return nil, err
		default:
			st.cur = cur
			st.patch, st.Changes, err = diff(sf.Settings, raw)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", sf.Name, err)
			}
			if !sameCode(packed, cur.CodeInfo) {
				st.Changes = append(st.Changes, "code")
			}
			st.Action = ActionUnchanged
			if len(st.Changes) > 0 {
				st.Action = ActionUpdate
			}
		}
		steps = append(steps, st)
	}
	if prune {
		_, all, err := c.ListFunctions(ctx)
		if err != nil {
			return nil, err
		}
		for _, f := range all {
			if !slices.ContainsFunc(s.Functions, func(sf SpecFunction) bool { return sf.Name == f.Name }) {
				steps = append(steps, &Step{Name: f.Name, Action: ActionDelete})
			}
		}
	}
	return steps, nil
}

// Apply carries out the steps of a plan, in order, and fills in each
// one's URL. It stops at the first error.
func Apply(ctx context.Context, c *Client, steps []*Step, progress func(*Step)) error {
	for _, st := range steps {
		var f *fn.Function
		var err error
		switch st.Action {
		case ActionCreate:
			f, err = c.CreateFunction(ctx, st.patch, st.packed.Zip)
		case ActionUpdate:
			if slices.Contains(st.Changes, "code") {
				handler, _ := st.fn.Settings["handler"].(string)
				f, err = c.PutCode(ctx, st.Name, st.packed.Zip, handler)
			}
			if err == nil && len(st.patch) > 0 {
				f, err = c.UpdateFunction(ctx, st.Name, st.patch)
			}
		case ActionUnchanged:
			f = st.cur
		case ActionDelete:
			err = c.DeleteFunction(ctx, st.Name)
		}
		if err != nil {
			return err
		}
		if f != nil && f.URL != nil && f.URL.Enabled {
			st.URL = c.URL + "/fn/" + f.Name
		}
		if progress != nil {
			progress(st)
		}
	}
	return nil
}

// PlanURL is the URL a step's function has, or will have, when its spec
// enables it; for a dry run.
func PlanURL(c *Client, st *Step) string {
	if st.fn == nil {
		return ""
	}
	if u, ok := st.fn.Settings["url"].(map[string]any); ok && u["enabled"] == true {
		return c.URL + "/fn/" + st.Name
	}
	return ""
}

// sameCode reports whether the packed directory is the code the server
// has: the same canonical zip, or else (the zip may differ when another Go
// release compresses differently) the same files, sizes, contents and
// modes.
func sameCode(p *Packed, info *fn.CodeInfo) bool {
	if info == nil {
		return false
	}
	if info.SHA256 == p.Manifest.SHA256 {
		return true
	}
	if len(info.Files) != len(p.Manifest.Files) {
		return false
	}
	for i, a := range info.Files {
		b := p.Manifest.Files[i]
		if a.Path != b.Path || a.Size != b.Size || a.SHA256 != b.SHA256 || a.Mode != b.Mode || a.Link != b.Link {
			return false
		}
	}
	return true
}

// diff returns the settings of want that the server's function (its JSON)
// does not have, and their names, sorted.
func diff(want map[string]any, server []byte) (map[string]any, []string, error) {
	var have map[string]json.RawMessage
	if err := json.Unmarshal(server, &have); err != nil {
		return nil, nil, err
	}
	patch := map[string]any{}
	var names []string
	for k, v := range want {
		if k == "name" {
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, nil, err
		}
		if !sameSetting(k, b, have[k]) {
			patch[k] = v
			names = append(names, k)
		}
	}
	slices.Sort(names)
	return patch, names, nil
}

// sameSetting compares one setting of the spec with the server's. The
// server normalises: runtimes and drivers have canonical names, objects
// gain fields with defaults (so an object of the spec matches when the
// server's has each of its fields equal), an empty list or object is the
// same as none. env is compared whole: a variable removed is a change.
func sameSetting(key string, want, have []byte) bool {
	var w, h any
	if err := json.Unmarshal(want, &w); err != nil {
		return false
	}
	if len(have) > 0 {
		if err := json.Unmarshal(have, &h); err != nil {
			return false
		}
	}
	switch key {
	case "runtime":
		ws, _ := w.(string)
		if rt, err := fn.CanonicalRuntime(ws); err == nil {
			w = rt
		}
	case "driver":
		ws, _ := w.(string)
		w = fn.CanonicalDriver(ws)
	case "env":
		return jsonEqual(emptyToNil(w), emptyToNil(h))
	}
	return subset(w, h)
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func emptyToNil(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 {
			return nil
		}
	case []any:
		if len(x) == 0 {
			return nil
		}
	case bool:
		if !x {
			return nil
		}
	case string:
		if x == "" {
			return nil
		}
	}
	return v
}

// subset reports whether want is in have: equal scalars, lists of the same
// length whose items are in have's, objects whose every field is in
// have's. Empty values are the same as none.
func subset(want, have any) bool {
	want, have = emptyToNil(want), emptyToNil(have)
	switch w := want.(type) {
	case nil:
		return have == nil
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range w {
			if !subset(v, h[k]) {
				return false
			}
		}
		return true
	case []any:
		h, ok := have.([]any)
		if !ok || len(h) != len(w) {
			return false
		}
		for i := range w {
			if !subset(w[i], h[i]) {
				return false
			}
		}
		return true
	default:
		return jsonEqual(want, have)
	}
}

// WritePlan writes the steps as a table: the action, the function, the
// changes.
func WritePlan(w io.Writer, steps []*Step, paint func(string, string) string) {
	for _, st := range steps {
		line := paint(fmt.Sprintf("%-9s", st.Action), actionColour(st.Action)) + " " + st.Name
		if len(st.Changes) > 0 && st.Action == ActionUpdate {
			line += " (" + strings.Join(st.Changes, ", ") + ")"
		}
		fmt.Fprintln(w, line)
	}
}

func actionColour(action string) string {
	switch action {
	case ActionCreate:
		return "green"
	case ActionUpdate:
		return "yellow"
	case ActionDelete:
		return "red"
	}
	return ""
}
