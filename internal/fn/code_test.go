package fn

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestFilesJSONKeepsEveryByte: a file with every byte value survives the
// JSON files map, as {"base64": …}, while text stays a string.
func TestFilesJSONKeepsEveryByte(t *testing.T) {
	var all []byte
	for i := range 256 {
		all = append(all, byte(i))
	}
	in := Files{"data.bin": string(all), "main.py": "print('é')\n"}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"main.py":"print('é')\n"`) || !strings.Contains(string(b), `"data.bin":{"base64":"AAECAw`) {
		t.Fatalf("encoded as %s", b)
	}
	var out Files
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out["data.bin"] != string(all) || out["main.py"] != in["main.py"] {
		t.Fatalf("round trip lost bytes: %q", out)
	}
	for _, bad := range []string{`{"a":{"base64":"!!"}}`, `{"a":{"b64":"AA=="}}`, `{"a":1}`, `{"a":{}}`} {
		if err := json.Unmarshal([]byte(bad), &out); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", bad, err)
		}
	}
}

func TestNormalizeCodeSources(t *testing.T) {
	sha := strings.Repeat("ab", 32)
	base := func() *Function {
		return &Function{Name: "f", Runtime: "python", Handler: "main.handler"}
	}
	for _, c := range []struct {
		name  string
		edit  func(f *Function)
		field string // "" when valid
	}{
		{"code and zipFile", func(f *Function) { f.Code = "x"; f.ZipFile = []byte("PK") }, "code"},
		{"files and zipFile", func(f *Function) { f.Files = Files{"main.py": "x"}; f.ZipFile = []byte("PK") }, "code"},
		{"zipFile alone", func(f *Function) { f.ZipFile = []byte("PK") }, ""},
		{"stored code", func(f *Function) {
			f.CodeInfo = &CodeInfo{SHA256: sha, Files: []FileInfo{{Path: "lib/x.py"}, {Path: "main.py"}}}
		}, ""},
		{"stored code without the module", func(f *Function) {
			f.CodeInfo = &CodeInfo{SHA256: sha, Files: []FileInfo{{Path: "other.py"}}}
		}, "handler"},
		{"stored code with a bad hash", func(f *Function) {
			f.CodeInfo = &CodeInfo{SHA256: "x", Files: []FileInfo{{Path: "main.py"}}}
		}, "codeInfo"},
		{"stored code escaping", func(f *Function) {
			f.CodeInfo = &CodeInfo{SHA256: sha, Files: []FileInfo{{Path: "../x"}, {Path: "main.py"}}}
		}, "files"},
		{"stored code unsorted", func(f *Function) {
			f.CodeInfo = &CodeInfo{SHA256: sha, Files: []FileInfo{{Path: "main.py"}, {Path: "a.py"}}}
		}, "codeInfo"},
		{"layers", func(f *Function) { f.Code = "x"; f.Layers = []string{sha} }, ""},
		{"a bad layer", func(f *Function) { f.Code = "x"; f.Layers = []string{"nope"} }, "layers"},
		{"a layer twice", func(f *Function) { f.Code = "x"; f.Layers = []string{sha, sha} }, "layers"},
	} {
		f := base()
		c.edit(f)
		err := f.Normalize(Defaults{TimeoutMs: 1000, MemoryMB: 128})
		var fe *FieldError
		switch {
		case c.field == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.field != "" && (!errors.As(err, &fe) || fe.Field != c.field):
			t.Errorf("%s: %v, want an error on %q", c.name, err, c.field)
		}
	}
}
