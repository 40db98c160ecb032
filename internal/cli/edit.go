package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// ErrStale is returned by UpdateFunctionAt when the function changed
// since the revision the caller read.
var ErrStale = errors.New("the function changed since it was read")

// editFields are the settings nimbus fn edit shows, in this order: a
// spec's, but for the name (which names the function) and the code.
var editFields = func() []string {
	var out []string
	for _, f := range specFields {
		if f != "name" && f != "code" {
			out = append(out, f)
		}
	}
	return out
}()

// EditDocument is a function's settings as YAML for an editor, after a
// comment saying what to do, and the settings it holds.
func EditDocument(raw []byte) (doc []byte, settings map[string]any, err error) {
	var all map[string]any
	if err := json.Unmarshal(raw, &all); err != nil {
		return nil, nil, err
	}
	settings = map[string]any{}
	var node yaml.Node
	node.Kind = yaml.MappingNode
	for _, k := range editFields {
		v, ok := all[k]
		if !ok {
			continue
		}
		settings[k] = v
		var kn, vn yaml.Node
		kn.SetString(k)
		if err := vn.Encode(v); err != nil {
			return nil, nil, err
		}
		node.Content = append(node.Content, &kn, &vn)
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# The settings of function %v (revision %v). Save and quit to apply them;\n", all["name"], all["revision"])
	buf.WriteString("# leave the file unchanged to change nothing. Its code: nimbus deploy.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&node); err != nil {
		return nil, nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, nil, err
	}
	return buf.Bytes(), settings, nil
}

// EditPatch is what an edited document changes of the settings it was
// made from (EditDocument): the fields whose value differs, and those
// removed, set to their empty value when deploy manages them. It is
// empty when nothing changed. A document that is not a map of known
// fields is an error.
func EditPatch(before map[string]any, edited []byte) (map[string]any, error) {
	var after map[string]any
	if err := yaml.Unmarshal(edited, &after); err != nil {
		return nil, fmt.Errorf("not YAML: %w", err)
	}
	var unknown []string
	for k := range after {
		if !containsString(editFields, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("unknown field %s (editable: %s)", strings.Join(unknown, ", "), strings.Join(editFields, ", "))
	}
	// Compare as JSON sees them: YAML's ints and JSON's float64s alike.
	norm := func(v any) (any, error) {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		var out any
		return out, json.Unmarshal(b, &out)
	}
	patch := map[string]any{}
	for k, v := range after {
		nv, err := norm(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		if old, ok := before[k]; !ok || !reflect.DeepEqual(old, nv) {
			patch[k] = nv
		}
	}
	for k, old := range before {
		if _, ok := after[k]; ok || old == nil {
			continue
		}
		if empty, managed := managedFields[k]; managed {
			patch[k] = empty
		}
	}
	// The patch must read as a function's fields.
	b, err := json.Marshal(patch)
	if err != nil {
		return nil, err
	}
	if err := fn.UnmarshalStrict(b, new(fn.Function)); err != nil {
		return nil, err
	}
	return patch, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// UpdateFunctionAt is UpdateFunction only if the function is still at
// revision (If-Match); else an error wrapping ErrStale.
func (c *Client) UpdateFunctionAt(ctx context.Context, name string, revision int, patch map[string]any) (*fn.Function, error) {
	h := http.Header{"If-Match": {`"` + strconv.Itoa(revision) + `"`}}
	_, b, err := c.sendJSON(ctx, http.MethodPut, fnPath(name), patch, h)
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusPreconditionFailed {
		return nil, fmt.Errorf("update %s: %w: %s", name, ErrStale, apiErr.Message)
	}
	if err != nil {
		return nil, fmt.Errorf("update %s: %w", name, err)
	}
	return decodeFunction(b)
}
