package transfer_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/store"
	"github.com/nimbusfaas/nimbus/internal/store/mongo"
	"github.com/nimbusfaas/nimbus/internal/store/mongo/mongotest"
	"github.com/nimbusfaas/nimbus/internal/store/sqlite"
	"github.com/nimbusfaas/nimbus/internal/store/transfer"
)

func TestMain(m *testing.M) { mongotest.Main(m) }

func openSQLite(t *testing.T) store.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "nimbus.db"))
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openMongo(t *testing.T) store.Store {
	t.Helper()
	s, err := mongo.Open(t.Context(), mongotest.Shared(t).NewDatabase(t))
	if err != nil {
		t.Fatalf("mongo.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var epoch = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// page is the history page size of exports in these tests: seed writes
// more records than that for one function.
const page = 16

// seed fills s with three functions, one with several pages of records,
// and returns how many records it wrote.
func seed(t *testing.T, s store.Store) int {
	t.Helper()
	ctx := t.Context()
	counts := map[string]int{"alpha": 3*page + 5, "bravo": page, "charlie": 0}
	total := 0
	for i, name := range []string{"charlie", "alpha", "bravo"} {
		f := &fn.Function{
			ID: fn.NewID(), Name: name, Runtime: runtime.Python, Handler: "pkg.main.handler",
			Files: map[string]string{"pkg/main.py": "def handler(e, c):\n    return e\n", "pkg/v1.2/data.json": `{"a": 1}`},
			Env:   map[string]string{"GREETING": "héllo <&>"}, Timeout: 3000 + i, Memory: 128, Driver: fn.DefaultDriver,
			MaxInstances: 2, Concurrency: 1, Revision: 3 + i, CreatedAt: epoch, UpdatedAt: epoch.Add(time.Duration(i) * time.Hour),
		}
		if err := s.CreateFunction(ctx, f); err != nil {
			t.Fatalf("CreateFunction(%s): %v", name, err)
		}
		var execs []*fn.Execution
		for j := range counts[name] {
			e := &fn.Execution{
				ID: fn.NewID(), FunctionID: f.ID, Version: f.Revision, Status: fn.StatusSuccess,
				Event:     json.RawMessage(fmt.Sprintf(`{"n": %d, "s": "<tag> & \u00e9"}`, j)),
				Result:    json.RawMessage(fmt.Sprintf(`[%d, {"ok": true}]`, j)),
				Logs:      fmt.Sprintf("call %d\n", j),
				StartedAt: epoch.Add(time.Duration(j) * time.Millisecond), DurationMs: 1.5, QueueMs: 0.25,
				ColdStart: j == 0, PeakMemoryKiB: 2048,
			}
			if j%5 == 1 {
				e.Status, e.Result = fn.StatusError, nil
				e.Error = &fn.ErrorInfo{Type: "ValueError", Message: "bad", Stack: "line 1"}
			}
			if j == 0 {
				e.InitMs = 80
			}
			execs = append(execs, e)
		}
		for k := 0; k < len(execs); k += 20 {
			if err := s.InsertExecutions(ctx, execs[k:min(k+20, len(execs))]); err != nil {
				t.Fatalf("InsertExecutions: %v", err)
			}
		}
		total += len(execs)
	}
	return total
}

// assertSame checks that dst holds what src holds: the same functions and,
// when withExecutions, the same records, events included.
func assertSame(t *testing.T, src, dst store.Store, withExecutions bool) {
	t.Helper()
	ctx := t.Context()
	want, err := src.ListFunctions(ctx)
	if err != nil {
		t.Fatalf("ListFunctions(src): %v", err)
	}
	got, err := dst.ListFunctions(ctx)
	if err != nil {
		t.Fatalf("ListFunctions(dst): %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("destination has %d functions, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("function %s:\n got %+v\nwant %+v", want[i].Name, got[i], want[i])
		}
		wantVs, err := src.ListVersions(ctx, want[i].ID)
		if err != nil {
			t.Fatalf("ListVersions(src): %v", err)
		}
		gotVs, err := dst.ListVersions(ctx, want[i].ID)
		if err != nil {
			t.Fatalf("ListVersions(dst): %v", err)
		}
		if !reflect.DeepEqual(gotVs, wantVs) {
			t.Errorf("function %s: versions:\n got %s\nwant %s", want[i].Name, mustJSON(t, gotVs), mustJSON(t, wantVs))
		}
		wantAs, err := src.ListAliases(ctx, want[i].ID)
		if err != nil {
			t.Fatalf("ListAliases(src): %v", err)
		}
		gotAs, err := dst.ListAliases(ctx, want[i].ID)
		if err != nil {
			t.Fatalf("ListAliases(dst): %v", err)
		}
		if !reflect.DeepEqual(gotAs, wantAs) {
			t.Errorf("function %s: aliases:\n got %s\nwant %s", want[i].Name, mustJSON(t, gotAs), mustJSON(t, wantAs))
		}
		wantExecs, gotExecs := all(t, src, want[i].ID), all(t, dst, want[i].ID)
		if !withExecutions {
			if len(gotExecs) != 0 {
				t.Errorf("function %s: %d executions copied, want none", want[i].Name, len(gotExecs))
			}
			continue
		}
		if len(gotExecs) != len(wantExecs) {
			t.Fatalf("function %s: %d executions, want %d", want[i].Name, len(gotExecs), len(wantExecs))
		}
		for j := range wantExecs {
			if !sameExecution(gotExecs[j], wantExecs[j]) {
				t.Fatalf("function %s execution %d:\n got %+v\nwant %+v", want[i].Name, j, gotExecs[j], wantExecs[j])
			}
		}
		if len(wantExecs) > 0 {
			e := wantExecs[len(wantExecs)/2]
			a, err := src.GetExecution(ctx, e.FunctionID, e.ID)
			if err != nil {
				t.Fatalf("GetExecution(src): %v", err)
			}
			b, err := dst.GetExecution(ctx, e.FunctionID, e.ID)
			if err != nil {
				t.Fatalf("GetExecution(dst): %v", err)
			}
			if !sameExecution(a, b) {
				t.Errorf("execution %s:\n got %+v\nwant %+v", e.ID, b, a)
			}
		}
	}
}

func all(t *testing.T, s store.Store, fid string) []*fn.Execution {
	t.Helper()
	var out []*fn.Execution
	q := store.ExecQuery{Limit: store.MaxExecLimit}
	for {
		page, err := s.ListExecutions(t.Context(), fid, q)
		if err != nil {
			t.Fatalf("ListExecutions: %v", err)
		}
		out = append(out, page...)
		if len(page) < q.PageSize() {
			return out
		}
		q.Before = page[len(page)-1].ID
	}
}

// sameExecution compares records, raw JSON by meaning.
func sameExecution(a, b *fn.Execution) bool {
	x, y := *a, *b
	if !jsonEqual(x.Event, y.Event) || !jsonEqual(x.Result, y.Result) {
		return false
	}
	x.Event, y.Event, x.Result, y.Result = nil, nil, nil, nil
	return reflect.DeepEqual(x, y)
}

func jsonEqual(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func TestCopyBothWays(t *testing.T) {
	tests := []struct {
		name     string
		src, dst func(t *testing.T) store.Store
	}{
		{"sqlite to mongodb", openSQLite, openMongo},
		{"mongodb to sqlite", openMongo, openSQLite},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, dst := tc.src(t), tc.dst(t)
			n := seed(t, src)
			st, err := transfer.Copy(t.Context(), src, dst, transfer.Options{Executions: true, PageSize: page, BatchSize: 10})
			if err != nil {
				t.Fatalf("Copy: %v", err)
			}
			if st.Functions != 3 || st.Executions != n || st.Skipped != 0 {
				t.Errorf("Copy = %+v, want 3 functions and %d executions", st, n)
			}
			assertSame(t, src, dst, true)
		})
	}
}

func TestExportImportThroughAStream(t *testing.T) {
	src, dst := openMongo(t), openSQLite(t)
	seed(t, src)
	var buf bytes.Buffer
	st, err := transfer.Export(t.Context(), src, &buf, transfer.Options{})
	if err != nil {
		t.Fatalf("Export: %v", err)
	}
	if st.Functions != 3 || st.Executions != 0 {
		t.Errorf("Export = %+v, want 3 functions and no executions", st)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], `"format":"nimbus-export"`) || !strings.Contains(lines[1], `"name":"alpha"`) {
		t.Fatalf("export without executions:\n%s", buf.String())
	}
	if !strings.Contains(buf.String(), "<&>") {
		t.Errorf("export escapes HTML characters: %s", lines[1])
	}
	if _, err := transfer.Import(t.Context(), dst, &buf, transfer.Options{}); err != nil {
		t.Fatalf("Import: %v", err)
	}
	assertSame(t, src, dst, false)
}

func TestImportIntoANonEmptyStore(t *testing.T) {
	src, dst := openSQLite(t), openMongo(t)
	n := seed(t, src)
	var buf bytes.Buffer
	if _, err := transfer.Export(t.Context(), src, &buf, transfer.Options{Executions: true, PageSize: page, BatchSize: 10}); err != nil {
		t.Fatalf("Export: %v", err)
	}
	stream := buf.Bytes()
	if st, err := transfer.Import(t.Context(), dst, bytes.NewReader(stream), transfer.Options{}); err != nil || st.Executions != n {
		t.Fatalf("first Import = %+v, %v", st, err)
	}

	_, err := transfer.Import(t.Context(), dst, bytes.NewReader(stream), transfer.Options{})
	if !errors.Is(err, fn.ErrConflict) || !strings.Contains(err.Error(), "--skip-existing") {
		t.Errorf("second Import = %v, want fn.ErrConflict suggesting --skip-existing", err)
	}
	st, err := transfer.Import(t.Context(), dst, bytes.NewReader(stream), transfer.Options{SkipExisting: true})
	if err != nil || st.Skipped != 3 || st.Functions != 0 || st.Executions != 0 {
		t.Errorf("Import with SkipExisting = %+v, %v; want 3 skipped", st, err)
	}
	assertSame(t, src, dst, true)
}

func TestImportRejectsBadInput(t *testing.T) {
	fid := fn.NewID()
	function := fmt.Sprintf(`{"function": {"id": %q, "name": "alpha", "runtime": "python", "handler": "main.handler", "files": {"main.py": "x = 1"}, "env": {}}}`, fid)
	tests := []struct {
		name, input, want string
	}{
		{"not json", "hello\n", "not a line of a nimbus export"},
		{"truncated", `{"function": {"id": "x"`, "not a line of a nimbus export"},
		{"another format", `{"format": "something-else", "version": 1}`, "unexpected header"},
		{"newer version", `{"format": "nimbus-export", "version": 99}`, "newer"},
		{"empty object", `{}`, "neither a function nor an execution"},
		{"version before its function", `{"publishedVersion": {"id": "f1", "name": "alpha", "version": 1}}`, "does not follow its function"},
		{"version of another function", function + "\n" + `{"publishedVersion": {"id": "f1", "name": "alpha", "version": 1}}`, "does not follow its function"},
		{"version numbered 0", function + "\n" + fmt.Sprintf(`{"publishedVersion": {"id": %q, "name": "alpha", "runtime": "python", "handler": "main.handler", "files": {"main.py": "x = 1"}, "env": {}}}`, fid), "not a version number"},
		{"version with a reserved variable", function + "\n" + fmt.Sprintf(`{"publishedVersion": {"id": %q, "version": 1, "name": "alpha", "runtime": "python", "handler": "main.handler", "files": {"main.py": "x = 1"}, "env": {"LD_PRELOAD": "/tmp/x.so"}}}`, fid), "LD_PRELOAD"},
		{"alias before its function", `{"alias": {"functionId": "f1", "name": "prod", "version": 1}}`, "does not follow its function"},
		{"alias with a bad name", function + "\n" + fmt.Sprintf(`{"alias": {"functionId": %q, "name": "42", "version": 1}}`, fid), "version number"},
		{"alias after records", function + "\n" + fmt.Sprintf(`{"execution": {"executionId": "e1", "functionId": %q, "status": "success"}}`, fid) + "\n" + fmt.Sprintf(`{"alias": {"functionId": %q, "name": "prod", "version": 1}}`, fid), "does not follow its function"},
		{"function without id", `{"function": {"name": "x"}}`, "without id or name"},
		{"execution before its function", `{"execution": {"executionId": "e1", "functionId": "f1", "status": "success"}}`, "has not had"},
		{"execution without id", function + "\n" + fmt.Sprintf(`{"execution": {"functionId": %q}}`, fid), "without id"},
		{"file outside its directory", fmt.Sprintf(`{"function": {"id": %q, "name": "evil", "runtime": "python", "handler": "main.handler", "files": {"main.py": "x = 1", "../../etc/cron.d/x": "* * * * * root id"}, "env": {}}}`, fid), "../../etc/cron.d/x"},
		{"reserved variable", fmt.Sprintf(`{"function": {"id": %q, "name": "evil", "runtime": "python", "handler": "main.handler", "files": {"main.py": "x = 1"}, "env": {"LD_PRELOAD": "/tmp/x.so"}}}`, fid), "LD_PRELOAD"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := transfer.Import(t.Context(), openSQLite(t), strings.NewReader(tc.input), transfer.Options{})
			if !errors.Is(err, fn.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Import = %v, want fn.ErrInvalid mentioning %q", err, tc.want)
			}
		})
	}
}

// TestExportCarriesBlobs: a function whose code is a blob, with a layer,
// moves with both blobs, each written once, and an import refuses a blob
// whose bytes are not what its name says.
func TestExportCarriesBlobs(t *testing.T) {
	src, dst := openSQLite(t), openSQLite(t)
	ctx := t.Context()
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	code, layer := []byte("PK code \x00\xff"), []byte("PK layer")
	for _, b := range [][]byte{code, layer} {
		if err := src.PutBlob(ctx, sum(b), bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"one", "two"} {
		f := &fn.Function{
			ID: fn.NewID(), Name: name, Runtime: runtime.Python, Handler: "main.handler", Env: map[string]string{},
			CodeInfo: &fn.CodeInfo{SHA256: sum(code), Size: int64(len(code)), Files: []fn.FileInfo{{Path: "main.py", Size: 1, Mode: 0o644}}},
			Layers:   []string{sum(layer)}, Timeout: 3000, Memory: 128, Driver: fn.DefaultDriver, MaxInstances: 2, Concurrency: 1,
			Revision: 1, CreatedAt: epoch, UpdatedAt: epoch,
		}
		if err := src.CreateFunction(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := transfer.Export(ctx, src, &buf, transfer.Options{}); err != nil {
		t.Fatalf("Export: %v", err)
	}
	if n := strings.Count(buf.String(), `"blob":`); n != 2 {
		t.Fatalf("export holds %d blobs, want 2 (each once):\n%s", n, buf.String())
	}
	stream := buf.String()
	if _, err := transfer.Import(ctx, dst, &buf, transfer.Options{}); err != nil {
		t.Fatalf("Import: %v", err)
	}
	assertSame(t, src, dst, false)
	for _, b := range [][]byte{code, layer} {
		rc, _, err := dst.OpenBlob(ctx, sum(b))
		if err != nil {
			t.Fatalf("blob %q in the destination: %v", b, err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(got, b) {
			t.Fatalf("blob %q in the destination: %q", b, got)
		}
	}
	// A blob tampered with in the stream is refused.
	bad := strings.Replace(stream, base64.StdEncoding.EncodeToString(code), base64.StdEncoding.EncodeToString([]byte("PK evil")), 1)
	if _, err := transfer.Import(ctx, openSQLite(t), strings.NewReader(bad), transfer.Options{}); !errors.Is(err, fn.ErrInvalid) {
		t.Fatalf("import of a tampered blob: %v, want ErrInvalid", err)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// seedVersions publishes versions of the functions seed made and points
// aliases at them: alpha gets two versions, the first running code (a
// blob) the draft no longer has, and two aliases, one with weights and a
// history; bravo one version and no alias; charlie none. It returns how
// many versions and aliases it made.
func seedVersions(t *testing.T, s store.Store) (versions, aliases int) {
	t.Helper()
	ctx := t.Context()
	fns, err := s.ListFunctions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*fn.Function{}
	for _, f := range fns {
		byName[f.Name] = f
	}
	old := []byte("PK old code of alpha")
	sum := sha256.Sum256(old)
	oldSHA := hex.EncodeToString(sum[:])
	if err := s.PutBlob(ctx, oldSHA, bytes.NewReader(old)); err != nil {
		t.Fatal(err)
	}
	publish := func(f *fn.Function, n int, edit func(*fn.Function)) {
		snap := *f
		snap.Version, snap.Revision = n, n
		if edit != nil {
			edit(&snap)
		}
		v := &fn.Version{Function: &snap, Description: fmt.Sprintf("release %d <&>", n), ConfigHash: snap.BehaviourHash(),
			PublishedAt: epoch.Add(time.Duration(n) * time.Hour)}
		if err := s.CreateVersion(ctx, v); err != nil {
			t.Fatalf("CreateVersion(%s, %d): %v", f.Name, n, err)
		}
		versions++
	}
	alpha := byName["alpha"]
	publish(alpha, 1, func(f *fn.Function) {
		f.Files = nil
		f.CodeInfo = &fn.CodeInfo{SHA256: oldSHA, Size: int64(len(old)), Files: []fn.FileInfo{{Path: "pkg/main.py", Size: 20, Mode: 0o644}}}
		f.Env = map[string]string{"OLD": "1"}
	})
	publish(alpha, 2, nil)
	publish(byName["bravo"], 1, nil)

	prod := &fn.Alias{FunctionID: alpha.ID, Name: "prod", Version: 1, Description: "production", Revision: 1,
		CreatedAt: epoch, UpdatedAt: epoch}
	prod.Move(epoch, "create")
	prod.Version, prod.AdditionalVersionWeights, prod.Revision = 2, map[string]float64{"1": 0.25}, 2
	prod.UpdatedAt = epoch.Add(time.Minute)
	prod.Move(prod.UpdatedAt, "update")
	beta := &fn.Alias{FunctionID: alpha.ID, Name: "beta", Version: 2, Revision: 1, CreatedAt: epoch, UpdatedAt: epoch}
	for _, a := range []*fn.Alias{prod, beta} {
		if err := s.CreateAlias(ctx, a); err != nil {
			t.Fatalf("CreateAlias(%s): %v", a.Name, err)
		}
		aliases++
	}
	return versions, aliases
}

// TestVersionsAndAliasesMove: versions (with the code only they run)
// and aliases go with their function, through a stream and from store to
// store, and a function left alone by SkipExisting keeps its own.
func TestVersionsAndAliasesMove(t *testing.T) {
	tests := []struct {
		name     string
		src, dst func(t *testing.T) store.Store
	}{
		{"sqlite to mongodb", openSQLite, openMongo},
		{"mongodb to sqlite", openMongo, openSQLite},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, dst := tc.src(t), tc.dst(t)
			n := seed(t, src)
			nv, na := seedVersions(t, src)
			st, err := transfer.Copy(t.Context(), src, dst, transfer.Options{Executions: true, PageSize: page, BatchSize: 10})
			if err != nil {
				t.Fatalf("Copy: %v", err)
			}
			if st.Functions != 3 || st.Versions != nv || st.Aliases != na || st.Executions != n {
				t.Errorf("Copy = %+v, want 3 functions, %d versions, %d aliases, %d executions", st, nv, na, n)
			}
			assertSame(t, src, dst, true)
			// The code of alpha's version 1 came along.
			v, err := dst.GetVersion(t.Context(), mustFunction(t, dst, "alpha").ID, 1)
			if err != nil {
				t.Fatalf("GetVersion: %v", err)
			}
			rc, _, err := dst.OpenBlob(t.Context(), v.CodeInfo.SHA256)
			if err != nil {
				t.Fatalf("code of version 1 in the destination: %v", err)
			}
			rc.Close()
		})
	}

	t.Run("stream, then again with SkipExisting", func(t *testing.T) {
		src, dst := openSQLite(t), openSQLite(t)
		seed(t, src)
		nv, na := seedVersions(t, src)
		var buf bytes.Buffer
		st, err := transfer.Export(t.Context(), src, &buf, transfer.Options{})
		if err != nil {
			t.Fatalf("Export: %v", err)
		}
		if st.Versions != nv || st.Aliases != na {
			t.Errorf("Export = %+v, want %d versions and %d aliases", st, nv, na)
		}
		stream := buf.String()
		if !strings.HasPrefix(stream, `{"format":"nimbus-export","version":2}`) {
			t.Errorf("header: %.60s", stream)
		}
		st, err = transfer.Import(t.Context(), dst, strings.NewReader(stream), transfer.Options{})
		if err != nil || st.Versions != nv || st.Aliases != na {
			t.Fatalf("Import = %+v, %v", st, err)
		}
		assertSame(t, src, dst, false)
		st, err = transfer.Import(t.Context(), dst, strings.NewReader(stream), transfer.Options{SkipExisting: true})
		if err != nil || st.Skipped != 3 || st.Versions != 0 || st.Aliases != 0 {
			t.Errorf("Import with SkipExisting = %+v, %v; want 3 skipped and nothing else", st, err)
		}
		assertSame(t, src, dst, false)
	})
}

func mustFunction(t *testing.T, s store.Store, name string) *fn.Function {
	t.Helper()
	f, err := s.GetFunction(t.Context(), name)
	if err != nil {
		t.Fatalf("GetFunction(%s): %v", name, err)
	}
	return f
}

// TestImportReadsVersion1: an export written before versions existed
// imports as it did.
func TestImportReadsVersion1(t *testing.T) {
	fid := fn.NewID()
	stream := `{"format":"nimbus-export","version":1}` + "\n" +
		fmt.Sprintf(`{"function": {"id": %q, "name": "alpha", "runtime": "python", "handler": "main.handler", "files": {"main.py": "x = 1"}, "env": {}, "revision": 4}}`, fid) + "\n" +
		fmt.Sprintf(`{"execution": {"executionId": %q, "functionId": %q, "status": "success", "startedAt": "2025-06-01T12:00:00Z"}}`, fn.NewID(), fid) + "\n"
	dst := openSQLite(t)
	st, err := transfer.Import(t.Context(), dst, strings.NewReader(stream), transfer.Options{})
	if err != nil || st.Functions != 1 || st.Executions != 1 || st.Versions != 0 || st.Aliases != 0 {
		t.Fatalf("Import of a version 1 export = %+v, %v", st, err)
	}
	if f := mustFunction(t, dst, "alpha"); f.ID != fid || f.Revision != 4 {
		t.Errorf("imported %+v", f)
	}
}
