package functions

import (
	"encoding/json"
	"errors"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// Merge applies the fields present in patch, a JSON object of a
// function's fields, to f: a change for Update. A "code" replaces the
// files. Identity and bookkeeping fields (id, version, createdAt,
// updatedAt) cannot be changed, and unknown fields are refused.
func Merge(f *fn.Function, patch map[string]json.RawMessage) error {
	for _, k := range []string{"id", "version", "createdAt", "updatedAt", "codeInfo", "buildStatus"} {
		if _, ok := patch[k]; ok {
			return fn.Invalid(k, "cannot be changed")
		}
	}
	base, err := json.Marshal(f)
	if err != nil {
		return err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(base, &m); err != nil {
		return err
	}
	// New code, in any form, replaces the code: the stored code and any
	// other form.
	for _, k := range []string{"code", "files", "zipFile"} {
		if _, ok := patch[k]; ok {
			delete(m, "code")
			delete(m, "files")
			delete(m, "zipFile")
			break
		}
	}
	for k, v := range patch {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	merged := new(fn.Function)
	if err := fn.UnmarshalStrict(b, merged); err != nil {
		if errors.Is(err, fn.ErrInvalid) {
			return err // a bad env: already names its field
		}
		return fn.Invalid("body", "not valid JSON for a function: "+err.Error())
	}
	*f = *merged
	return nil
}
