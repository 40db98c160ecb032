package mongo_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/store"
	"github.com/nimbusfaas/nimbus/internal/store/mongo"
	"github.com/nimbusfaas/nimbus/internal/store/mongo/mongotest"
	"github.com/nimbusfaas/nimbus/internal/store/storetest"
)

func TestMain(m *testing.M) { mongotest.Main(m) }

func TestConformance(t *testing.T) {
	srv := mongotest.Shared(t)
	storetest.Run(t, func(t *testing.T) (store.Store, func(t *testing.T) store.Store) {
		uri := srv.NewDatabase(t)
		return open(t, uri), func(t *testing.T) store.Store { return open(t, uri) }
	})
}

// open opens the database at uri; the caller closes it.
func open(t testing.TB, uri string) *mongo.Store {
	t.Helper()
	s, err := mongo.Open(t.Context(), uri)
	if err != nil {
		t.Fatalf("Open(%s): %v", uri, err)
	}
	return s
}

// openClosing opens the database at uri and closes it when t ends.
func openClosing(t testing.TB, uri string) *mongo.Store {
	t.Helper()
	s := open(t, uri)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func testFunction(name string) *fn.Function {
	now := time.Now().Truncate(time.Millisecond)
	return &fn.Function{
		ID: fn.NewID(), Name: name, Runtime: runtime.Python, Handler: "main.handler",
		Files: map[string]string{"main.py": "def handler(e, c):\n    return e\n"}, Env: map[string]string{},
		Timeout: 1000, Memory: 128, Driver: fn.DefaultDriver, MaxInstances: 1, Revision: 1,
		CreatedAt: now, UpdatedAt: now,
	}
}

func TestDatabaseName(t *testing.T) {
	srv := mongotest.Shared(t)
	tests := []struct {
		name string
		uri  string
		want string
	}{
		{"from the path", srv.NewDatabase(t), ""},
		{"default", mongotest.WithDatabase(srv.URI(), ""), mongo.DefaultDatabase},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == mongo.DefaultDatabase && srv.External() {
				t.Skip("would write to the external deployment's nimbus database")
			}
			s := openClosing(t, tc.uri)
			want := tc.want
			if want == "" {
				_, want, _ = strings.Cut(strings.TrimPrefix(tc.uri, "mongodb://"), "/")
				want, _, _ = strings.Cut(want, "?")
			}
			if got := s.Database(); got != want {
				t.Errorf("Database() = %q, want %q", got, want)
			}
		})
	}
}

// TestEveryFieldRoundTrips fills every field of a function and of an
// execution with something other than its zero value, so that a field
// added to package fn but not to the documents fails here by name.
func TestEveryFieldRoundTrips(t *testing.T) {
	ctx := t.Context()
	s := openClosing(t, mongotest.Shared(t).NewDatabase(t))

	f := new(fn.Function)
	// Code and ZipFile come in only, never stored; a function as stored
	// is the draft, whose Version is 0 (published versions are stored
	// apart, see TestEveryVersionAndAliasFieldRoundTrips).
	fill(t, reflect.ValueOf(f).Elem(), "Code", "ZipFile", "Archive", "Version")
	f.ID = fn.NewID()
	f.Files = map[string]string{"main.py": "x = 1\n", "pkg/v1.2/data.json": `{"a.b": 1}`, "$odd": "dollar"}
	f.Env = map[string]string{"A": "1", "EMPTY": ""}
	f.Schedules[0].NextRun = nil // shown, never stored
	if err := s.CreateFunction(ctx, f); err != nil {
		t.Fatalf("CreateFunction: %v", err)
	}
	got, err := s.GetFunction(ctx, f.ID)
	if err != nil {
		t.Fatalf("GetFunction: %v", err)
	}
	if !reflect.DeepEqual(got, f) {
		t.Errorf("function round trip:\n got %+v\nwant %+v", got, f)
	}

	e := new(fn.Execution)
	fill(t, reflect.ValueOf(e).Elem())
	e.ID, e.FunctionID = fn.NewID(), f.ID
	e.Event = json.RawMessage(`{"$oid": "not an id", "big": 123456789012345678901234567890, "k.e.y": [1, 2.50]}`)
	e.Result = json.RawMessage(`"text"`)
	if err := s.InsertExecutions(ctx, []*fn.Execution{e}); err != nil {
		t.Fatalf("InsertExecutions: %v", err)
	}
	gotE, err := s.GetExecution(ctx, f.ID, e.ID)
	if err != nil {
		t.Fatalf("GetExecution: %v", err)
	}
	if !reflect.DeepEqual(gotE, e) {
		t.Errorf("execution round trip:\n got %+v\nwant %+v", gotE, e)
	}
}

// TestEveryVersionAndAliasFieldRoundTrips does for versions and aliases
// what TestEveryFieldRoundTrips does for functions.
func TestEveryVersionAndAliasFieldRoundTrips(t *testing.T) {
	ctx := t.Context()
	s := openClosing(t, mongotest.Shared(t).NewDatabase(t))

	f := new(fn.Function)
	fill(t, reflect.ValueOf(f).Elem(), "Code", "ZipFile", "Archive")
	f.ID = fn.NewID()
	f.Files = map[string]string{"main.py": "x = 1\n", "bin": "\xff\x00", "$odd": "dollar"}
	f.Schedules[0].NextRun = nil
	if err := s.CreateFunction(ctx, f); err != nil {
		t.Fatalf("CreateFunction: %v", err)
	}
	v := &fn.Version{Function: f}
	fill(t, reflect.ValueOf(v).Elem(), "Function")
	f.Version = 7
	if err := s.CreateVersion(ctx, v); err != nil {
		t.Fatalf("CreateVersion: %v", err)
	}
	gotV, err := s.GetVersion(ctx, f.ID, 7)
	if err != nil {
		t.Fatalf("GetVersion: %v", err)
	}
	if !reflect.DeepEqual(gotV, v) {
		t.Errorf("version round trip:\n got %+v %+v\nwant %+v %+v", gotV, gotV.Function, v, v.Function)
	}

	a := new(fn.Alias)
	fill(t, reflect.ValueOf(a).Elem(), "AdditionalVersionWeights", "History")
	a.FunctionID, a.Name = f.ID, "live"
	a.AdditionalVersionWeights = map[string]float64{"8": 0.375}
	a.History = make([]fn.AliasMove, 2)
	for i := range a.History {
		fill(t, reflect.ValueOf(&a.History[i]).Elem(), "Weights")
	}
	a.History[1].Weights = map[string]float64{"3": 0.5}
	if err := s.CreateAlias(ctx, a); err != nil {
		t.Fatalf("CreateAlias: %v", err)
	}
	gotA, err := s.GetAlias(ctx, f.ID, "live")
	if err != nil {
		t.Fatalf("GetAlias: %v", err)
	}
	if !reflect.DeepEqual(gotA, a) {
		t.Errorf("alias round trip:\n got %+v\nwant %+v", gotA, a)
	}
}

// fill sets every exported field of v, except those named in skip, to a
// value other than its zero value.
func fill(t *testing.T, v reflect.Value, skip ...string) {
	t.Helper()
	for i := range v.NumField() {
		sf := v.Type().Field(i)
		if !sf.IsExported() || contains(skip, sf.Name) {
			continue
		}
		fillValue(t, v.Field(i), sf.Name, i)
	}
}

// fillValue sets fv, field i named name, to a value other than its zero
// value.
func fillValue(t *testing.T, fv reflect.Value, name string, i int) {
	t.Helper()
	switch fv.Kind() {
	case reflect.String:
		fv.SetString("s-" + name)
	case reflect.Int, reflect.Int64, reflect.Uint32:
		if fv.Kind() == reflect.Uint32 {
			fv.SetUint(uint64(1000 + i))
		} else {
			fv.SetInt(int64(1000 + i))
		}
	case reflect.Float64:
		fv.SetFloat(float64(i) + 0.25)
	case reflect.Bool:
		fv.SetBool(true)
	case reflect.Map:
		fv.Set(reflect.ValueOf(map[string]string{"k": "v-" + name}))
	case reflect.Slice:
		switch e := fv.Type().Elem(); {
		case e.Kind() == reflect.Uint8: // json.RawMessage
			fv.SetBytes([]byte(`{"f":"` + name + `"}`))
		case e.Kind() == reflect.String:
			fv.Set(reflect.ValueOf([]string{"s-" + name}))
		case e.Kind() == reflect.Float64:
			fv.Set(reflect.ValueOf([]float64{float64(i) + 0.5}))
		case e.Kind() == reflect.Int:
			fv.Set(reflect.ValueOf([]int{i, i + 1}))
		case e.Kind() == reflect.Struct:
			s := reflect.MakeSlice(fv.Type(), 1, 1)
			fill(t, s.Index(0))
			fv.Set(s)
		default:
			t.Fatalf("fill: field %s of type %s: teach fill about it", name, fv.Type())
		}
	case reflect.Pointer:
		p := reflect.New(fv.Type().Elem())
		if e := p.Elem(); e.Kind() == reflect.Struct && e.Type() != reflect.TypeOf(time.Time{}) {
			fill(t, e)
		} else {
			fillValue(t, e, name, i)
		}
		fv.Set(p)
	case reflect.Struct:
		if fv.Type() != reflect.TypeOf(time.Time{}) {
			t.Fatalf("fill: field %s of type %s: teach fill about it", name, fv.Type())
		}
		fv.Set(reflect.ValueOf(time.Date(2024, 2, 29, 23, 59, 58, int(i)*int(time.Millisecond), time.UTC)))
	default:
		t.Fatalf("fill: field %s of kind %s: teach fill about it", name, fv.Kind())
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestIndexes(t *testing.T) {
	uri := mongotest.Shared(t).NewDatabase(t)
	openClosing(t, uri).Close()
	// Opening again (as a second server would) finds them in place.
	s := openClosing(t, uri)
	if err := s.CreateFunction(t.Context(), testFunction("alpha")); err != nil {
		t.Fatalf("CreateFunction: %v", err)
	}
	names, err := mongo.IndexNames(t.Context(), s)
	if err != nil {
		t.Fatalf("IndexNames: %v", err)
	}
	for coll, want := range map[string][]string{
		"functions":     {"name_unique"},
		"executions":    {"function_history", "function_status_history"},
		"metricMinutes": {"start", "function"},
		"keys":          {"created"},
		"audit":         {"time"},
	} {
		for _, n := range want {
			if !contains(names[coll], n) {
				t.Errorf("collection %s has indexes %v, want %s among them", coll, names[coll], n)
			}
		}
	}
}

func TestInsertIsIdempotent(t *testing.T) {
	ctx := t.Context()
	s := openClosing(t, mongotest.Shared(t).NewDatabase(t))
	f := testFunction("alpha")
	if err := s.CreateFunction(ctx, f); err != nil {
		t.Fatalf("CreateFunction: %v", err)
	}
	var batch []*fn.Execution
	for range 10 {
		batch = append(batch, &fn.Execution{ID: fn.NewID(), FunctionID: f.ID, Status: fn.StatusSuccess, StartedAt: time.Now()})
	}
	// A retried batch, part of which was written before the failure.
	if err := s.InsertExecutions(ctx, batch[:4]); err != nil {
		t.Fatalf("InsertExecutions(first part): %v", err)
	}
	if err := s.InsertExecutions(ctx, batch); err != nil {
		t.Fatalf("InsertExecutions(whole batch again) = %v, want nil", err)
	}
	got, err := s.ListExecutions(ctx, f.ID, store.ExecQuery{Limit: 100})
	if err != nil {
		t.Fatalf("ListExecutions: %v", err)
	}
	if len(got) != len(batch) {
		t.Errorf("%d executions stored, want %d", len(got), len(batch))
	}
}

// TestUpdateLocks: an update lock left by an update that died blocks
// updates of that version only until it is stale.
func TestUpdateLocks(t *testing.T) {
	ctx := t.Context()
	s := openClosing(t, mongotest.Shared(t).NewDatabase(t))
	f := testFunction("alpha")
	if err := s.CreateFunction(ctx, f); err != nil {
		t.Fatalf("CreateFunction: %v", err)
	}
	next := func(v int) *fn.Function { g := *f; g.Revision, g.Memory = v, 100+v; return &g }

	if err := mongo.PutLock(ctx, s, f.ID, 2, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateFunction(ctx, next(2), 1); !errors.Is(err, fn.ErrConflict) {
		t.Errorf("update under a fresh lock = %v, want fn.ErrConflict", err)
	}
	if err := mongo.PutLock(ctx, s, f.ID, 3, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateFunction(ctx, next(3), 1); err != nil {
		t.Errorf("update under a stale lock = %v, want it taken over", err)
	}
	// Released: the next update of that version is only stale, and one
	// that is not stale goes through.
	if err := s.UpdateFunction(ctx, next(3), 1); !errors.Is(err, fn.ErrConflict) || !strings.Contains(err.Error(), "no longer 1") {
		t.Errorf("stale update = %v, want fn.ErrConflict for the version", err)
	}
	if err := s.UpdateFunction(ctx, next(4), 3); err != nil {
		t.Errorf("update from version 3: %v", err)
	}
	got, err := s.GetFunction(ctx, f.ID)
	if err != nil || got.Revision != 4 || got.Memory != 104 {
		t.Errorf("stored %+v, %v; want version 4", got, err)
	}
}

func TestInvalidInput(t *testing.T) {
	ctx := t.Context()
	s := openClosing(t, mongotest.Shared(t).NewDatabase(t))
	tests := []struct {
		name string
		call func() error
	}{
		{"function without id", func() error { return s.CreateFunction(ctx, &fn.Function{Name: "x"}) }},
		{"update without id", func() error { return s.UpdateFunction(ctx, &fn.Function{Name: "x"}, 1) }},
		{"execution without id", func() error {
			return s.InsertExecutions(ctx, []*fn.Execution{{FunctionID: fn.NewID()}})
		}},
		{"negative keep", func() error { _, err := s.PruneExecutions(ctx, fn.NewID(), -1); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, fn.ErrInvalid) {
				t.Errorf("got %v, want fn.ErrInvalid", err)
			}
		})
	}
}

func TestOpenBadURI(t *testing.T) {
	_, err := mongo.Open(t.Context(), "mongodb://user:secret@127.0.0.1:1/x?notAnOption=%zz")
	if err == nil {
		t.Fatal("Open of a malformed URI succeeded")
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error shows the password: %v", err)
	}
}

// TestUnreachable: with nothing listening, Open and every call fail within
// a few seconds with fn.ErrUnavailable and a message that says so.
func TestUnreachable(t *testing.T) {
	srv := mongotest.Start(t)
	uri := srv.NewDatabase(t)
	s := openClosing(t, uri)
	f := testFunction("alpha")
	if err := s.CreateFunction(t.Context(), f); err != nil {
		t.Fatalf("CreateFunction: %v", err)
	}
	srv.Stop(t)

	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"get function", func(ctx context.Context) error { _, err := s.GetFunction(ctx, "alpha"); return err }},
		{"list functions", func(ctx context.Context) error { _, err := s.ListFunctions(ctx); return err }},
		{"create function", func(ctx context.Context) error { return s.CreateFunction(ctx, testFunction("bravo")) }},
		{"insert executions", func(ctx context.Context) error {
			return s.InsertExecutions(ctx, []*fn.Execution{{ID: fn.NewID(), FunctionID: f.ID, Status: fn.StatusSuccess}})
		}},
		{"list executions", func(ctx context.Context) error {
			_, err := s.ListExecutions(ctx, f.ID, store.ExecQuery{})
			return err
		}},
		{"open", func(ctx context.Context) error {
			s, err := mongo.Open(ctx, uri)
			if err == nil {
				s.Close()
			}
			return err
		}},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			err := c.call(t.Context())
			took := time.Since(start)
			if !errors.Is(err, fn.ErrUnavailable) {
				t.Fatalf("got %v, want fn.ErrUnavailable", err)
			}
			if !strings.Contains(err.Error(), "MongoDB at 127.0.0.1:") {
				t.Errorf("error %q does not say which MongoDB is unavailable", err)
			}
			// Server selection gives up after 2s; allow for a loaded machine.
			if took > 10*time.Second {
				t.Errorf("took %v to fail, want about %v", took, mongo.DefaultServerSelectionTimeout)
			}
		})
	}

	srv.Restart(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for {
		_, err := s.GetFunction(ctx, "alpha")
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("GetFunction still failing 30s after the restart: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestRegisteredSchemes(t *testing.T) {
	uri := mongotest.Shared(t).NewDatabase(t)
	s, err := store.Open(t.Context(), uri)
	if err != nil {
		t.Fatalf("store.Open(%s): %v", uri, err)
	}
	defer s.Close()
	if _, ok := s.(*mongo.Store); !ok {
		t.Errorf("store.Open(%s) = %T, want *mongo.Store", uri, s)
	}
}

// TestNegativeStoredAttempt: a negative attempt in the database (written
// by something else) is refused on read, not passed on.
func TestNegativeStoredAttempt(t *testing.T) {
	ctx := t.Context()
	s := openClosing(t, mongotest.Shared(t).NewDatabase(t))
	f := testFunction("alpha")
	if err := s.CreateFunction(ctx, f); err != nil {
		t.Fatalf("CreateFunction: %v", err)
	}
	e := &fn.Execution{ID: fn.NewID(), FunctionID: f.ID, Status: fn.StatusQueued, StartedAt: time.Now()}
	if err := s.InsertExecutions(ctx, []*fn.Execution{e}); err != nil {
		t.Fatalf("InsertExecutions: %v", err)
	}
	if err := mongo.SetExecutionField(ctx, s, e.ID, "attempt", -1); err != nil {
		t.Fatalf("corrupt attempt: %v", err)
	}
	if got, err := s.GetExecution(ctx, f.ID, e.ID); err == nil || !strings.Contains(err.Error(), "attempt") {
		t.Errorf("GetExecution = %+v, %v; want an error about the attempt", got, err)
	}
	if got, err := s.ListExecutions(ctx, f.ID, store.ExecQuery{Status: fn.StatusQueued}); err == nil {
		t.Errorf("ListExecutions = %d records, nil error; want an error about the attempt", len(got))
	}
}
