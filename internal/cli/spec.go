package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// SpecFile is the name deploy looks for in a directory.
const SpecFile = "nimbus.yaml"

// Spec is a deploy spec: the functions a directory holds.
type Spec struct {
	Path      string // the spec file
	Functions []SpecFunction
}

// SpecFunction is one function of a spec: its settings in the API's JSON
// names, and the directory of its code.
type SpecFunction struct {
	Name     string
	CodeDir  string         // absolute
	Settings map[string]any // the API's fields the spec gives, name included
}

// specFields are the function fields a spec may set, as the API names
// them; "code" is a directory instead of the code itself.
var specFields = []string{
	"name", "runtime", "handler", "code", "env", "memory", "timeout", "driver",
	"maxInstances", "minInstances", "concurrency", "keepAlive", "network",
	"url", "async", "schedules", "layers", "build",
}

// managedFields are the fields deploy sets even when a spec leaves them
// out, to their empty value, so that removing them from the spec removes
// them from the function. The others, left out, keep the server's value
// (its default when the function is created).
var managedFields = map[string]any{
	"env": map[string]any{}, "network": false, "url": nil, "async": nil,
	"schedules": []any{}, "layers": []any{},
}

// FindSpec returns the spec file that arg names: a file, or nimbus.yaml in
// a directory ("" is the current one).
func FindSpec(arg string) (string, error) {
	if arg == "" {
		arg = "."
	}
	info, err := os.Stat(arg)
	if err != nil {
		return "", err
	}
	if info.IsDir() {
		arg = filepath.Join(arg, SpecFile)
		if _, err := os.Stat(arg); err != nil {
			return "", fmt.Errorf("no %s in %s: %w", SpecFile, filepath.Dir(arg), err)
		}
	}
	return filepath.Abs(arg)
}

// LoadSpec reads and checks the spec at path, expanding ${VAR} in env
// values with lookup.
func LoadSpec(path string, lookup func(string) (string, bool)) (*Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := ParseSpec(b, filepath.Dir(path), lookup)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s.Path = path
	return s, nil
}

// ParseSpec parses a spec whose code directories are relative to dir.
func ParseSpec(data []byte, dir string, lookup func(string) (string, bool)) (*Spec, error) {
	var raw struct {
		Functions []map[string]any `yaml:"functions"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("not a spec: %w", err)
	}
	if len(raw.Functions) == 0 {
		return nil, errors.New("no functions: want a list under functions:")
	}
	s := &Spec{}
	seen := map[string]bool{}
	for i, m := range raw.Functions {
		f, err := specFunction(m, dir, lookup)
		if err != nil {
			return nil, fmt.Errorf("functions[%d]: %w", i, err)
		}
		if seen[f.Name] {
			return nil, fmt.Errorf("functions[%d]: %s is named twice", i, f.Name)
		}
		seen[f.Name] = true
		s.Functions = append(s.Functions, f)
	}
	return s, nil
}

func specFunction(m map[string]any, dir string, lookup func(string) (string, bool)) (SpecFunction, error) {
	var f SpecFunction
	var unknown []string
	for k := range m {
		if !slices.Contains(specFields, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return f, fmt.Errorf("unknown field %s (a spec has %s)", strings.Join(unknown, ", "), strings.Join(specFields, ", "))
	}
	name, _ := m["name"].(string)
	if name == "" {
		return f, errors.New("name: is required")
	}
	if rt, _ := m["runtime"].(string); rt == "" {
		return f, fmt.Errorf("%s: runtime: is required", name)
	}
	code := "."
	if c, ok := m["code"]; ok {
		s, ok := c.(string)
		if !ok || s == "" {
			return f, fmt.Errorf("%s: code: want a directory", name)
		}
		code = s
	}
	if !filepath.IsAbs(code) {
		code = filepath.Join(dir, code)
	}
	f.Name, f.CodeDir = name, filepath.Clean(code)
	f.Settings = map[string]any{}
	for k, v := range m {
		if k != "code" {
			f.Settings[k] = v
		}
	}
	if env, ok := m["env"]; ok && env != nil {
		em, ok := env.(map[string]any)
		if !ok {
			return f, fmt.Errorf("%s: env: want a map of names to values", name)
		}
		out := map[string]any{}
		for k, v := range em {
			if ref, ok := v.(map[string]any); ok {
				// {secret: NAME}: a reference to a stored secret, sent as
				// it is (the server says whether it is well formed).
				secret, ok := ref["secret"].(string)
				if !ok || len(ref) != 1 {
					return f, fmt.Errorf("%s: env.%s: want a value or {secret: NAME}", name, k)
				}
				out[k] = map[string]any{"secret": secret}
				continue
			}
			s := fmt.Sprint(v)
			if v == nil {
				s = ""
			}
			exp, err := expand(s, lookup)
			if err != nil {
				return f, fmt.Errorf("%s: env.%s: %w", name, k, err)
			}
			out[k] = exp
		}
		f.Settings["env"] = out
	}
	for k, v := range managedFields {
		if cur, ok := f.Settings[k]; !ok || cur == nil {
			f.Settings[k] = v
		}
	}
	// The settings must be a function as the API reads it.
	b, err := json.Marshal(f.Settings)
	if err != nil {
		return f, fmt.Errorf("%s: %w", name, err)
	}
	if err := fn.UnmarshalStrict(b, new(fn.Function)); err != nil {
		return f, fmt.Errorf("%s: %w", name, err)
	}
	return f, nil
}

var varRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expand replaces each ${VAR} in s with the variable's value; an unset
// variable is an error. "$${" stays a literal "${".
func expand(s string, lookup func(string) (string, bool)) (string, error) {
	const escaped = "\x00"
	s = strings.ReplaceAll(s, "$${", escaped)
	var missing []string
	out := varRE.ReplaceAllStringFunc(s, func(m string) string {
		name := m[2 : len(m)-1]
		v, ok := lookup(name)
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("${%s} is not set", strings.Join(missing, "}, ${"))
	}
	return strings.ReplaceAll(out, escaped, "${"), nil
}
