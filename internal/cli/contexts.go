package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// Context is a named connection to a server, as kubectl's contexts are.
type Context struct {
	Name string `yaml:"name" json:"name"`
	URL  string `yaml:"url" json:"url"`
	Key  string `yaml:"key,omitempty" json:"key,omitempty"`
}

// Contexts is the client's config file: its named connections and the one
// in use.
type Contexts struct {
	Current  string    `yaml:"current,omitempty"`
	Contexts []Context `yaml:"contexts"`

	path string
}

// ConfigPath is where the config file lives: $XDG_CONFIG_HOME/nimbus/
// config.yaml, else ~/.config/nimbus/config.yaml.
func ConfigPath(lookup func(string) (string, bool)) (string, error) {
	if dir, ok := lookup("XDG_CONFIG_HOME"); ok && dir != "" {
		return filepath.Join(dir, "nimbus", "config.yaml"), nil
	}
	home, ok := lookup("HOME")
	if !ok || home == "" {
		var err error
		if home, err = os.UserHomeDir(); err != nil {
			return "", fmt.Errorf("config: no XDG_CONFIG_HOME and no home directory: %w", err)
		}
	}
	return filepath.Join(home, ".config", "nimbus", "config.yaml"), nil
}

// LoadContexts reads the config file at path; a missing file is an empty
// one.
func LoadContexts(path string) (*Contexts, error) {
	c := &Contexts{path: path}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if err := yaml.Unmarshal(b, c); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Save writes the config file, readable only by its owner: it may hold
// API keys.
func (c *Contexts) Save() error {
	b, err := yaml.Marshal(c)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	tmp := c.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return os.Rename(tmp, c.path)
}

// Get returns the context called name.
func (c *Contexts) Get(name string) (*Context, error) {
	for i := range c.Contexts {
		if c.Contexts[i].Name == name {
			return &c.Contexts[i], nil
		}
	}
	return nil, fmt.Errorf("context %q: %w", name, fn.ErrNotFound)
}

// Set adds a context, or replaces the one of the same name.
func (c *Contexts) Set(ctx Context) {
	if old, err := c.Get(ctx.Name); err == nil {
		*old = ctx
		return
	}
	c.Contexts = append(c.Contexts, ctx)
}

// Use makes name the current context.
func (c *Contexts) Use(name string) error {
	if _, err := c.Get(name); err != nil {
		return err
	}
	c.Current = name
	return nil
}

// Delete removes a context; the current one stops being current.
func (c *Contexts) Delete(name string) error {
	i := slices.IndexFunc(c.Contexts, func(x Context) bool { return x.Name == name })
	if i < 0 {
		return fmt.Errorf("context %q: %w", name, fn.ErrNotFound)
	}
	c.Contexts = slices.Delete(c.Contexts, i, i+1)
	if c.Current == name {
		c.Current = ""
	}
	return nil
}

// Connection is what a client command connects with.
type Connection struct {
	URL, Key string
	Context  string // the context it came from, if any
}

// Resolve picks the connection: flags, then the environment (NIMBUS_URL,
// NIMBUS_API_KEY), then the context named (flagContext, else the current
// one), then DefaultURL. URL and key are chosen separately, so that
// NIMBUS_API_KEY can go with a context's URL.
func (c *Contexts) Resolve(flagURL, flagKey, flagContext string, lookup func(string) (string, bool)) (Connection, error) {
	var conn Connection
	var ctx *Context
	name := flagContext
	if name == "" {
		name = c.Current
	}
	if name != "" {
		var err error
		if ctx, err = c.Get(name); err != nil {
			return conn, err
		}
		conn.Context = name
	}
	env := func(k string) string { v, _ := lookup(k); return v }
	conn.URL = first(flagURL, env("NIMBUS_URL"), ctxField(ctx, func(c *Context) string { return c.URL }), DefaultURL)
	conn.Key = first(flagKey, env("NIMBUS_API_KEY"), ctxField(ctx, func(c *Context) string { return c.Key }))
	return conn, nil
}

func ctxField(c *Context, get func(*Context) string) string {
	if c == nil {
		return ""
	}
	return get(c)
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
