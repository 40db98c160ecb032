package api_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
)

// entry is one file of an archive built by a test.
type entry struct {
	name, body string
	mode       int64 // 0: 0644
	link       string
}

func zipOf(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		h.SetMode(0o644)
		if mode != 0o644 {
			h.SetMode(0o755)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, e.body)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func tarGzOf(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: tar.TypeReg}
		if e.mode != 0 {
			h.Mode = e.mode
		}
		if e.link != "" {
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, e.link, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, e.body)
	}
	tw.Close()
	gz.Close()
	return b.Bytes()
}

// raw sends body with a content type and returns the status and reply.
func (h *harness) raw(method, path, contentType string, body []byte) (int, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// codeView is what the API shows of a function's code.
type codeView struct {
	ID       string            `json:"id"`
	Files    map[string]any    `json:"files"`
	Layers   []string          `json:"layers"`
	CodeInfo *codeInfoView     `json:"codeInfo"`
	Build    map[string]any    `json:"buildStatus"`
	Env      map[string]string `json:"env"`
}

type codeInfoView struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	Files  []struct {
		Path   string `json:"path"`
		Size   int64  `json:"size"`
		SHA256 string `json:"sha256"`
		Mode   uint32 `json:"mode"`
	} `json:"files"`
}

func (h *harness) codeOf(name string) codeView {
	h.t.Helper()
	var v codeView
	if st := h.do("GET", "/api/functions/"+name, nil, &v); st != http.StatusOK {
		h.t.Fatalf("GET %s: %d", name, st)
	}
	return v
}

// zipFiles reads GET /api/functions/{name}/code into path → content.
func (h *harness) zipFiles(name string) map[string]string {
	h.t.Helper()
	st, b := h.raw("GET", "/api/functions/"+name+"/code", "", nil)
	if st != http.StatusOK {
		h.t.Fatalf("GET code of %s: %d %s", name, st, b)
	}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		h.t.Fatalf("code of %s is not a zip: %v", name, err)
	}
	out := map[string]string{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			h.t.Fatal(err)
		}
		c, _ := io.ReadAll(rc)
		rc.Close()
		out[f.Name] = string(c)
	}
	return out
}

func hexSHA(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:]) }

// TestBinaryFilesRoundTrip: a file with every byte value, sent in the
// JSON files map as base64, comes back identical from GET …/code, and the
// function lists it with its size and hash instead of inlining it.
func TestBinaryFilesRoundTrip(t *testing.T) {
	h := newHarness(t, options{})
	var all []byte
	for i := range 256 {
		all = append(all, byte(i))
	}
	body := fmt.Sprintf(`{"name":"bin","runtime":"python","files":{"main.py":"def handler(e, c):\n    return 1\n","data.bin":{"base64":%q}}}`,
		bytesB64(all))
	st, b := h.raw("POST", "/api/functions", "application/json", []byte(body))
	if st != http.StatusCreated {
		t.Fatalf("create: %d %s", st, b)
	}
	files := h.zipFiles("bin")
	if files["data.bin"] != string(all) || !strings.Contains(files["main.py"], "return 1") {
		t.Fatalf("code came back as %q", files)
	}
	v := h.codeOf("bin")
	if v.Files != nil {
		t.Errorf("binary code inlined as files: %v", v.Files)
	}
	if v.CodeInfo == nil || len(v.CodeInfo.Files) != 2 || v.CodeInfo.Files[0].Path != "data.bin" ||
		v.CodeInfo.Files[0].Size != 256 || v.CodeInfo.Files[0].SHA256 != hexSHA(string(all)) {
		t.Fatalf("codeInfo = %+v", v.CodeInfo)
	}
	if v.Build["state"] != "ready" {
		t.Errorf("buildStatus = %v, want ready", v.Build)
	}
	// Small text code is inlined, so that a client can edit it as before.
	h.create("texty", 0)
	if v := h.codeOf("texty"); v.Files["main.py"] != "x = 1\n" {
		t.Errorf("text code not inlined: %v", v.Files)
	}
}

func bytesB64(b []byte) string {
	j, _ := json.Marshal(b) // []byte is base64 in JSON
	return strings.Trim(string(j), `"`)
}

// TestArchivesInEveryShape: code comes as a zip to PUT …/code, a tar.gz,
// a multipart create and a base64 zipFile; the same files give the same
// hash whatever the shape, and modes are kept.
func TestArchivesInEveryShape(t *testing.T) {
	h := newHarness(t, options{})
	tree := []entry{{name: "main.py", body: "def handler(e, c):\n    return 2\n"}, {name: "lib/util.py", body: "X = 1\n"}, {name: "bin/run.sh", body: "#!/bin/sh\necho hi\n", mode: 0o755}}

	// multipart create
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	fw, _ := mw.CreateFormField("function")
	io.WriteString(fw, `{"name":"multi","runtime":"python"}`)
	aw, _ := mw.CreateFormFile("archive", "code.zip")
	aw.Write(zipOf(t, tree...))
	mw.Close()
	if st, b := h.raw("POST", "/api/functions", mw.FormDataContentType(), mp.Bytes()); st != http.StatusCreated {
		t.Fatalf("multipart create: %d %s", st, b)
	}
	// zipFile in JSON, as a tar.gz
	body, _ := json.Marshal(map[string]any{"name": "json", "runtime": "python", "zipFile": tarGzOf(t, tree...)})
	if st, b := h.raw("POST", "/api/functions", "application/json", body); st != http.StatusCreated {
		t.Fatalf("zipFile create: %d %s", st, b)
	}
	// PUT …/code with a zip, on a function made from a files map
	h.create("put", 0)
	if st, b := h.raw("PUT", "/api/functions/put/code", "application/zip", zipOf(t, tree...)); st != http.StatusOK {
		t.Fatalf("PUT code: %d %s", st, b)
	}
	sha := h.codeOf("multi").CodeInfo.SHA256
	for _, name := range []string{"json", "put"} {
		if got := h.codeOf(name).CodeInfo.SHA256; got != sha {
			t.Errorf("%s: code hash %s, want %s (the same files)", name, got, sha)
		}
	}
	v := h.codeOf("put")
	for _, f := range v.CodeInfo.Files {
		want := uint32(0o644)
		if f.Path == "bin/run.sh" {
			want = 0o755
		}
		if f.Mode != want {
			t.Errorf("%s: mode %o, want %o", f.Path, f.Mode, want)
		}
	}
	if files := h.zipFiles("put"); files["lib/util.py"] != "X = 1\n" || len(files) != 3 {
		t.Errorf("PUT code gave %q", files)
	}
	// An update that resends the same code as a files map changes nothing.
	var up struct {
		Revision int `json:"revision"`
	}
	before := h.codeOf("multi")
	if st := h.do("PUT", "/api/functions/multi", map[string]any{"env": before.Env}, &up); st != http.StatusOK || up.Revision != 1 {
		t.Errorf("no-op update: %d revision %d, want 200 and revision 1", st, up.Revision)
	}
}

// TestBadArchivesKeepTheOldCode: each bad archive gets a 400 naming the
// entry, and the function keeps its code.
func TestBadArchivesKeepTheOldCode(t *testing.T) {
	h := newHarness(t, options{})
	h.create("keep", 0)
	sha := h.codeOf("keep").CodeInfo.SHA256
	dup := zipOf(t, entry{name: "main.py", body: "a"}, entry{name: "main.py", body: "b"})
	for name, c := range map[string]struct {
		ct   string
		body []byte
		says string
	}{
		"zip slip":          {"application/zip", zipOf(t, entry{name: "../evil.py", body: "x"}, entry{name: "main.py", body: "x"}), "../evil.py"},
		"absolute path":     {"application/zip", zipOf(t, entry{name: "/etc/evil", body: "x"}), "/etc/evil"},
		"link out":          {"application/gzip", tarGzOf(t, entry{name: "main.py", body: "x"}, entry{name: "out", link: "../../etc/passwd"}), "out"},
		"duplicate":         {"application/zip", dup, "main.py"},
		"not an archive":    {"application/zip", []byte("just some text, not a zip"), "zip"},
		"no handler module": {"application/zip", zipOf(t, entry{name: "other.py", body: "x"}), "main.py"},
		"NUL in a name":     {"application/zip", zipOf(t, entry{name: "main.py", body: "x"}, entry{name: "a\x00b", body: "x"}), "a"},
		"non-UTF-8 name":    {"application/zip", zipOf(t, entry{name: "main.py", body: "x"}, entry{name: "a\xffb", body: "x"}), "UTF-8"},
	} {
		st, b := h.raw("PUT", "/api/functions/keep/code", c.ct, c.body)
		if st != http.StatusBadRequest || !strings.Contains(string(b), c.says) {
			t.Errorf("%s: %d %s; want 400 naming %q", name, st, b, c.says)
		}
	}
	if got := h.codeOf("keep").CodeInfo.SHA256; got != sha {
		t.Fatalf("code changed to %s after bad archives", got)
	}
	if files := h.zipFiles("keep"); files["main.py"] != "x = 1\n" {
		t.Fatalf("code now %q", files)
	}
}

// TestManyFiles: an archive of 5,000 files is taken (a JSON files map
// took at most 1,000).
func TestManyFiles(t *testing.T) {
	h := newHarness(t, options{})
	entries := []entry{{name: "main.py", body: "def handler(e, c):\n    return 3\n"}}
	for i := range 5000 {
		entries = append(entries, entry{name: fmt.Sprintf("node_modules/p%d/index.js", i), body: fmt.Sprintf("module.exports = %d\n", i)})
	}
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	fw, _ := mw.CreateFormField("function")
	io.WriteString(fw, `{"name":"many","runtime":"python"}`)
	aw, _ := mw.CreateFormFile("archive", "code.zip")
	aw.Write(zipOf(t, entries...))
	mw.Close()
	if st, b := h.raw("POST", "/api/functions", mw.FormDataContentType(), mp.Bytes()); st != http.StatusCreated {
		t.Fatalf("create: %d %.300s", st, b)
	}
	if v := h.codeOf("many"); len(v.CodeInfo.Files) != 5001 || v.Files != nil {
		t.Fatalf("%d files listed (inline %d)", len(v.CodeInfo.Files), len(v.Files))
	}
	if n := len(h.zipFiles("many")); n != 5001 {
		t.Fatalf("code zip holds %d files", n)
	}
}

// TestLayers: an uploaded layer gets an id a function can name; an
// unknown id is refused.
func TestLayers(t *testing.T) {
	h := newHarness(t, options{})
	st, b := h.raw("POST", "/api/layers", "application/zip", zipOf(t, entry{name: "python/layerlib/__init__.py", body: "V = 7\n"}))
	if st != http.StatusCreated {
		t.Fatalf("POST layer: %d %s", st, b)
	}
	var layer struct{ ID string }
	json.Unmarshal(b, &layer)
	if len(layer.ID) != 64 {
		t.Fatalf("layer id %q", layer.ID)
	}
	body, _ := json.Marshal(map[string]any{"name": "layered", "runtime": "python", "code": "x = 1\n", "layers": []string{layer.ID}})
	if st, b := h.raw("POST", "/api/functions", "application/json", body); st != http.StatusCreated {
		t.Fatalf("create with layer: %d %s", st, b)
	}
	if v := h.codeOf("layered"); len(v.Layers) != 1 || v.Layers[0] != layer.ID {
		t.Fatalf("layers = %v", v.Layers)
	}
	if st, _ := h.raw("GET", "/api/layers/"+layer.ID, "", nil); st != http.StatusOK {
		t.Fatalf("GET layer: %d", st)
	}
	body, _ = json.Marshal(map[string]any{"name": "nolayer", "runtime": "python", "code": "x = 1\n", "layers": []string{strings.Repeat("0", 64)}})
	if st, b := h.raw("POST", "/api/functions", "application/json", body); st != http.StatusBadRequest || !strings.Contains(string(b), "POST /api/layers") {
		t.Fatalf("create with an unknown layer: %d %s", st, b)
	}
}
