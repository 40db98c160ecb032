package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"
)

// Secret is a secret's metadata as the API shows it: never its value.
type Secret struct {
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Version     int       `json:"version"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
	UsedBy      []string  `json:"usedBy"`
}

func secretPath(name string) string { return "/api/secrets/" + url.PathEscape(name) }

// SetSecret stores value as the secret name: it replaces the value of
// an existing secret (PUT), or creates the secret when there is none
// (POST). An empty description keeps the one stored.
func (c *Client) SetSecret(ctx context.Context, name, value, description string) (*Secret, bool, error) {
	body := map[string]any{"value": value}
	if description != "" {
		body["description"] = description
	}
	_, b, err := c.sendJSON(ctx, http.MethodPut, secretPath(name), body, nil)
	created := false
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound {
		body["name"] = name
		_, b, err = c.sendJSON(ctx, http.MethodPost, "/api/secrets", body, nil)
		created = true
	}
	if err != nil {
		return nil, false, err
	}
	s := new(Secret)
	if err := json.Unmarshal(b, s); err != nil {
		return nil, false, fmt.Errorf("secret %s: %w", name, err)
	}
	return s, created, nil
}

// ListSecrets returns the API's reply and the secrets in it.
func (c *Client) ListSecrets(ctx context.Context) ([]byte, []Secret, error) {
	b, err := c.get(ctx, "/api/secrets")
	if err != nil {
		return nil, nil, err
	}
	var out struct {
		Secrets []Secret `json:"secrets"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, nil, fmt.Errorf("secrets: %w", err)
	}
	return b, out.Secrets, nil
}

// DeleteSecret deletes the secret name; one a function uses is refused
// (409).
func (c *Client) DeleteSecret(ctx context.Context, name string) error {
	_, _, err := c.do(ctx, http.MethodDelete, secretPath(name), nil, "", nil)
	return err
}

// Key is an API key as the API shows it; Secret is set only in the
// reply that creates it.
type Key struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes"`
	Functions []string   `json:"functions,omitempty"`
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
	RateLimit float64    `json:"rateLimit,omitempty"`
	CreatedAt time.Time  `json:"createdAt"`
	CreatedBy string     `json:"createdBy,omitempty"`
	Secret    string     `json:"secret,omitempty"`
}

// NewKey is what CreateKey asks for.
type NewKey struct {
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes"`
	Functions []string   `json:"functions,omitempty"`
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
	RateLimit float64    `json:"rateLimit,omitempty"`
}

// CreateKey creates an API key; the reply holds its secret, shown once.
func (c *Client) CreateKey(ctx context.Context, k NewKey) (*Key, error) {
	_, b, err := c.sendJSON(ctx, http.MethodPost, "/api/keys", k, nil)
	if err != nil {
		return nil, err
	}
	out := new(Key)
	if err := json.Unmarshal(b, out); err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	return out, nil
}

// ListKeys returns the API's reply and the keys in it.
func (c *Client) ListKeys(ctx context.Context) ([]byte, []Key, error) {
	b, err := c.get(ctx, "/api/keys")
	if err != nil {
		return nil, nil, err
	}
	var out struct {
		Keys []Key `json:"keys"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, nil, fmt.Errorf("keys: %w", err)
	}
	return b, out.Keys, nil
}

// DeleteKey revokes the key id.
func (c *Client) DeleteKey(ctx context.Context, id string) error {
	_, _, err := c.do(ctx, http.MethodDelete, "/api/keys/"+url.PathEscape(id), nil, "", nil)
	return err
}

// AuditEntry is one entry of the audit log.
type AuditEntry struct {
	ID     string          `json:"id"`
	Time   time.Time       `json:"time"`
	KeyID  string          `json:"keyId"`
	Source string          `json:"source"`
	Action string          `json:"action"`
	Target string          `json:"target"`
	Before json.RawMessage `json:"before,omitempty"`
	After  json.RawMessage `json:"after,omitempty"`
}

// AuditQuery filters the audit log; zero fields filter nothing.
type AuditQuery struct {
	KeyID, Action, Target string
	Since, Until          time.Time
	Before                string // an entry's id: entries older than it
	Limit                 int
}

// Audit returns the API's reply, its entries and the id to page on from
// ("" at the end).
func (c *Client) Audit(ctx context.Context, q AuditQuery) ([]byte, []AuditEntry, string, error) {
	v := url.Values{}
	for k, s := range map[string]string{"keyId": q.KeyID, "action": q.Action, "target": q.Target, "before": q.Before} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339))
	}
	if q.Limit > 0 {
		v.Set("limit", fmt.Sprint(q.Limit))
	}
	path := "/api/audit"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	b, err := c.get(ctx, path)
	if err != nil {
		return nil, nil, "", err
	}
	var out struct {
		Entries []AuditEntry `json:"entries"`
		Next    string       `json:"next"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, nil, "", fmt.Errorf("audit: %w", err)
	}
	return b, out.Entries, out.Next, nil
}

// ParseSince reads --since: a duration back from now ("24h") or an
// RFC 3339 time.
func ParseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("--since %q: want a positive duration", s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--since %q: want a duration (24h) or an RFC 3339 time (2026-01-02T15:04:05Z)", s)
	}
	return t, nil
}

// WriteSecrets prints secrets as a table: never a value.
func WriteSecrets(w io.Writer, ss []Secret) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tUPDATED\tUSED BY\tDESCRIPTION")
	for _, s := range ss {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", s.Name, s.Version, s.UpdatedAt.UTC().Format(time.RFC3339),
			dash(strings.Join(s.UsedBy, ",")), dash(s.Description))
	}
	return tw.Flush()
}

// WriteKeys prints keys as a table: never a secret.
func WriteKeys(w io.Writer, ks []Key) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tFUNCTIONS\tEXPIRES\tRATE LIMIT\tCREATED")
	for _, k := range ks {
		exp, rate := "-", "-"
		if k.ExpiresAt != nil {
			exp = k.ExpiresAt.UTC().Format(time.RFC3339)
		}
		if k.RateLimit > 0 {
			rate = fmt.Sprintf("%g/s", k.RateLimit)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, dash(strings.Join(k.Scopes, ",")),
			dash(strings.Join(k.Functions, ",")), exp, rate, k.CreatedAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

// WriteAudit prints audit entries as a table.
func WriteAudit(w io.Writer, es []AuditEntry) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tKEY\tSOURCE\tACTION\tTARGET")
	for _, e := range es {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Time.UTC().Format(time.RFC3339), dash(e.KeyID), dash(e.Source), e.Action, dash(e.Target))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
