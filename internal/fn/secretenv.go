package fn

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"
)

// A function's "env" in JSON mixes two kinds of variable:
//
//	"env": {"LOG_LEVEL": "debug", "DB_PASSWORD": {"secret": "db-password"}}
//
// A string is a plain variable (Function.Env), shown as it is. An object
// {"secret": NAME} is a reference to a stored secret (Function.SecretEnv):
// only the secret's name is stored, shown and published; its value is
// revealed by the engine right before an instance starts (Lambda's
// dynamic references) and lives only in that instance's copy of the
// function (Function.Secrets, never encoded).

// SecretRef is the JSON of a variable that references a secret.
type SecretRef struct {
	Secret string `json:"secret"`
}

// plainFunction is Function without its JSON methods, for them to use.
type plainFunction Function

// functionJSON is a Function as JSON: its own fields, with env shadowed
// by the mixed object.
type functionJSON struct {
	*plainFunction
	Env json.RawMessage `json:"env"`
}

// MarshalJSON writes f as encoding/json would, except "env", which holds
// both the plain variables and the secret references ({"secret": NAME}).
// Secrets (revealed values) are never written. The "env" key comes last.
func (f Function) MarshalJSON() ([]byte, error) {
	env, err := f.envJSON()
	if err != nil {
		return nil, err
	}
	return marshal(functionJSON{plainFunction: (*plainFunction)(&f), Env: env})
}

// marshal is json.Marshal without HTML escaping: the encoder that called
// a MarshalJSON escapes its output or not, as it was told (an export
// keeps "<" as it is).
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// envJSON is the mixed "env" object: null when f has no variables of
// either kind and Env is nil, as encoding/json writes a nil map.
func (f *Function) envJSON() (json.RawMessage, error) {
	if len(f.SecretEnv) == 0 {
		return marshal(f.Env)
	}
	m := make(map[string]any, len(f.Env)+len(f.SecretEnv))
	for k, v := range f.Env {
		m[k] = v
	}
	for k, name := range f.SecretEnv {
		m[k] = SecretRef{Secret: name}
	}
	return marshal(m) // keys sorted
}

// UnmarshalJSON reads f as encoding/json would, except "env" (see
// MarshalJSON): strings go to Env, {"secret": NAME} objects to
// SecretEnv, anything else is ErrInvalid. Like a map's decoding, the
// variables are added to those f has; null clears both. Unknown fields
// are ignored, as by json.Unmarshal; UnmarshalStrict refuses them.
func (f *Function) UnmarshalJSON(b []byte) error {
	aux := functionJSON{plainFunction: (*plainFunction)(f)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	if aux.Env == nil {
		return nil // absent
	}
	return f.decodeEnv(aux.Env)
}

func (f *Function) decodeEnv(b json.RawMessage) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		f.Env, f.SecretEnv = nil, nil
		return nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return Invalid("env", "want an object of variable names to strings or {\"secret\": name}")
	}
	if f.Env == nil {
		f.Env = make(map[string]string, len(raw))
	}
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		v := bytes.TrimSpace(raw[k])
		switch {
		case len(v) > 0 && v[0] == '"':
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return Invalid("env", fmt.Sprintf("value of %q: %v", k, err))
			}
			f.Env[k] = s
			delete(f.SecretEnv, k)
		case len(v) > 0 && v[0] == '{':
			name, err := decodeSecretRef(k, v)
			if err != nil {
				return err
			}
			if f.SecretEnv == nil {
				f.SecretEnv = map[string]string{}
			}
			f.SecretEnv[k] = name
			delete(f.Env, k)
		default:
			return Invalid("env", fmt.Sprintf("value of %q must be a string or {\"secret\": name}, not %.40s", k, v))
		}
	}
	return nil
}

// decodeSecretRef reads {"secret": NAME} and nothing else.
func decodeSecretRef(k string, v []byte) (string, error) {
	var ref map[string]json.RawMessage
	if err := json.Unmarshal(v, &ref); err != nil {
		return "", Invalid("env", fmt.Sprintf("value of %q: %v", k, err))
	}
	bad := Invalid("env", fmt.Sprintf("value of %q must be a string or {\"secret\": name} and nothing else", k))
	s, ok := ref["secret"]
	if !ok || len(ref) != 1 {
		return "", bad
	}
	var name string
	if err := json.Unmarshal(s, &name); err != nil {
		return "", bad
	}
	return name, nil
}

// normalizeSecretEnv checks the secret references (CheckSecretEnv) and
// returns the bytes they count toward MaxEnvBytes: each variable's name
// and its secret's name (the value is not known until an instance
// starts; it is bounded by MaxSecretValueBytes).
func (f *Function) normalizeSecretEnv() (int, error) {
	if len(f.SecretEnv) == 0 {
		f.SecretEnv = nil
		return 0, nil
	}
	return CheckSecretEnv(f.Env, f.SecretEnv)
}

// CheckSecretEnv checks secret references as Normalize does, for stores
// to check what they read: variable names as for plain ones, none also
// in plain, valid secret names. It returns the bytes of the names.
func CheckSecretEnv(plain, secret map[string]string) (int, error) {
	size := 0
	for _, k := range slices.Sorted(maps.Keys(secret)) {
		name := secret[k]
		if err := checkEnvName(k); err != nil {
			return 0, err
		}
		if _, ok := plain[k]; ok {
			return 0, Invalid("env", fmt.Sprintf("%q is both a plain variable and a secret", k))
		}
		if err := ValidSecretName(name); err != nil {
			msg := err.Error()
			if fe := (*FieldError)(nil); errors.As(err, &fe) {
				msg = fe.Message
			}
			return 0, Invalid("env", fmt.Sprintf("secret of %q: %s", k, msg))
		}
		size += len(k) + len(name)
	}
	return size, nil
}

// checkEnvName is the rule for every variable's name, plain or secret.
func checkEnvName(k string) error {
	if !envKeyRE.MatchString(k) {
		return Invalid("env", fmt.Sprintf("%q is not a valid variable name", k))
	}
	if reservedEnv(k) {
		return Invalid("env", fmt.Sprintf("%q is reserved by Nimbus", k))
	}
	return nil
}

// SecretNames lists the secrets f references, sorted, each once.
func (f *Function) SecretNames() []string {
	var out []string
	for _, name := range f.SecretEnv {
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// UnmarshalStrict decodes data, one JSON value, into f, refusing fields
// a Function (or any struct in it) does not have, as a json.Decoder with
// DisallowUnknownFields would. (Function decodes itself, so a decoder's
// own setting does not reach its fields.)
func UnmarshalStrict(data []byte, f *Function) error {
	aux := functionJSON{plainFunction: (*plainFunction)(f)}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&aux); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("json: trailing data after the function")
	}
	if aux.Env == nil {
		return nil
	}
	return f.decodeEnv(aux.Env)
}

// MarshalJSON writes v as encoding/json would without Function's own
// MarshalJSON, which the embedded *Function would otherwise lend it:
// the function's fields, then the version's.
func (v Version) MarshalJSON() ([]byte, error) {
	type versionFields struct {
		Description string    `json:"description,omitempty"`
		ConfigHash  string    `json:"configHash"`
		PublishedAt time.Time `json:"publishedAt"`
	}
	var fb []byte
	if v.Function != nil {
		b, err := v.Function.MarshalJSON()
		if err != nil {
			return nil, err
		}
		fb = b
	}
	rest, err := marshal(versionFields{Description: v.Description, ConfigHash: v.ConfigHash, PublishedAt: v.PublishedAt})
	if err != nil {
		return nil, err
	}
	return JoinObjects(fb, rest), nil
}

// UnmarshalJSON reads what MarshalJSON writes.
func (v *Version) UnmarshalJSON(b []byte) error {
	var rest struct {
		Description string    `json:"description"`
		ConfigHash  string    `json:"configHash"`
		PublishedAt time.Time `json:"publishedAt"`
	}
	if err := json.Unmarshal(b, &rest); err != nil {
		return err
	}
	if v.Function == nil {
		v.Function = new(Function)
	}
	if err := v.Function.UnmarshalJSON(b); err != nil {
		return err
	}
	v.Description, v.ConfigHash, v.PublishedAt = rest.Description, rest.ConfigHash, rest.PublishedAt
	return nil
}

// MarshalJSONNoEscape is json.Marshal without HTML escaping, for the
// MarshalJSON of types that embed a Function (see JoinObjects).
func MarshalJSONNoEscape(v any) ([]byte, error) { return marshal(v) }

// JoinObjects joins the members of JSON objects a and b (as encoding/json
// writes them, compact) into one object; a nil or empty a gives b. It is
// for types that embed a Function and add fields of their own.
func JoinObjects(a, b []byte) []byte {
	a, b = bytes.TrimSpace(a), bytes.TrimSpace(b)
	switch {
	case len(a) < 2 || string(a) == "null" || string(a) == "{}":
		return b
	case string(b) == "{}":
		return a
	}
	out := make([]byte, 0, len(a)+len(b))
	out = append(out, a[:len(a)-1]...)
	out = append(out, ',')
	return append(out, b[1:]...)
}
