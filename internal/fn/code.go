package fn

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"time"
	"unicode/utf8"
)

// Files maps a function's file paths to their contents, as the JSON API
// sends them: a file whose bytes are valid UTF-8 is a JSON string, any
// other is {"base64": "…"}. Either form is accepted for any file, so
// binary content survives a round trip.
type Files map[string]string

type base64File struct {
	Base64 *string `json:"base64"`
}

// MarshalJSON writes text files as strings and the others as base64.
func (fs Files) MarshalJSON() ([]byte, error) {
	if fs == nil {
		return []byte("null"), nil
	}
	names := make([]string, 0, len(fs))
	for p := range fs {
		names = append(names, p)
	}
	sort.Strings(names)
	var b bytes.Buffer
	b.WriteByte('{')
	for i, p := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(p)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		c := fs[p]
		var v []byte
		if utf8.ValidString(c) {
			v, err = json.Marshal(c)
		} else {
			s := base64.StdEncoding.EncodeToString([]byte(c))
			v, err = json.Marshal(base64File{Base64: &s})
		}
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON reads what MarshalJSON writes.
func (fs *Files) UnmarshalJSON(data []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	if raw == nil {
		*fs = nil
		return nil
	}
	out := make(Files, len(raw))
	for p, v := range raw {
		var s string
		if err := json.Unmarshal(v, &s); err == nil {
			out[p] = s
			continue
		}
		var bf base64File
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&bf); err != nil || bf.Base64 == nil {
			return Invalid("files", fmt.Sprintf("%q: give the content as a string or as {\"base64\": \"…\"}", p))
		}
		b, err := base64.StdEncoding.DecodeString(*bf.Base64)
		if err != nil {
			return Invalid("files", fmt.Sprintf("%q: not valid base64: %v", p, err))
		}
		out[p] = string(b)
	}
	*fs = out
	return nil
}

// CodeInfo describes a function's code as stored: one canonical zip,
// named by the SHA-256 of its bytes, and the files it holds.
type CodeInfo struct {
	SHA256       string     `json:"sha256"`
	Size         int64      `json:"size"`         // bytes of the zip
	UnpackedSize int64      `json:"unpackedSize"` // bytes of its files
	Files        []FileInfo `json:"files"`        // sorted by path
	// Layer is the key of the layer its dependencies were built into, ""
	// when it declares none.
	Layer string `json:"layer,omitempty"`
}

// FileInfo is one file of a function's code.
type FileInfo struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256,omitempty"`
	Mode   uint32 `json:"mode"`           // 0644 or 0755
	Link   string `json:"link,omitempty"` // a symbolic link's target
}

// Has reports whether the code holds a file (or link) at p.
func (c *CodeInfo) Has(p string) bool {
	i := sort.Search(len(c.Files), func(i int) bool { return c.Files[i].Path >= p })
	return i < len(c.Files) && c.Files[i].Path == p
}

// BuildSettings say how a function's dependencies are built.
type BuildSettings struct {
	// Scripts lets packages run their install scripts (npm's lifecycle
	// scripts, building Python source distributions). Off, only wheels
	// and script-free packages install.
	Scripts bool `json:"scripts"`
}

// Build states, as Lambda's LastUpdateStatus.
const (
	BuildPending  = "pending"
	BuildBuilding = "building"
	BuildReady    = "ready"
	BuildFailed   = "failed"
)

// BuildStatus is the state of the last build of a function's
// dependencies (or "ready" at once for code without any).
type BuildStatus struct {
	State string `json:"state"`
	// CodeSHA256 is the code the build was for: when a rebuild failed it
	// differs from the code that serves.
	CodeSHA256 string `json:"codeSha256,omitempty"`
	// Layer is the content key of the dependency layer built, "" when the
	// code declares no dependencies.
	Layer      string    `json:"layer,omitempty"`
	Cached     bool      `json:"cached,omitempty"` // the layer was built before, by any function
	Error      string    `json:"error,omitempty"`
	Log        string    `json:"log,omitempty"` // the build's output (its end, when long)
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
}
