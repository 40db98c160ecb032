package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/nimbusfaas/nimbus/internal/auth"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/store"
	"github.com/nimbusfaas/nimbus/internal/store/mongo/mongotest"
)

func TestMain(m *testing.M) {
	// Run as the nimbus binary when a test asks for it (see nimbus).
	if os.Getenv(asNimbus) == "1" {
		main()
		os.Exit(0)
	}
	mongotest.Main(m)
}

// run runs a store command in process with env as the whole environment.
func run(t *testing.T, cmd func(stdio) *cobra.Command, env map[string]string, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	std := stdio{
		env:    func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		in:     strings.NewReader(stdin),
		out:    &out,
		errOut: &errOut,
	}
	c := cmd(std)
	c.SetArgs(args)
	c.SetOut(&out)
	c.SetErr(&errOut)
	c.SilenceErrors, c.SilenceUsage = true, true
	err = c.ExecuteContext(t.Context())
	return out.String(), errOut.String(), err
}

func openAt(t *testing.T, location string) store.Store {
	t.Helper()
	s, err := store.Open(t.Context(), location)
	if err != nil {
		t.Fatalf("open %s: %v", location, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// seed creates two functions, one with n records, and returns them.
func seed(t *testing.T, s store.Store, n int) []*fn.Function {
	t.Helper()
	now := time.Date(2025, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	var fns []*fn.Function
	for i, name := range []string{"hello", "world"} {
		f := &fn.Function{
			ID: fn.NewID(), Name: name, Runtime: runtime.NodeJS, Handler: "index.handler",
			Files: map[string]string{"index.js": "exports.handler = async (e) => e;\n", "lib/v1.0.js": "// dots"},
			Env:   map[string]string{"MODE": "prod"}, Timeout: 1000 * (i + 1), Memory: 256, Driver: fn.DefaultDriver,
			MaxInstances: 4, Concurrency: 1, Network: i == 1, Revision: 2, CreatedAt: now, UpdatedAt: now.Add(time.Minute),
		}
		if err := s.CreateFunction(t.Context(), f); err != nil {
			t.Fatal(err)
		}
		fns = append(fns, f)
	}
	var execs []*fn.Execution
	for i := range n {
		execs = append(execs, &fn.Execution{
			ID: fn.NewID(), FunctionID: fns[0].ID, Version: 2, Status: fn.StatusSuccess,
			Event: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)), Result: json.RawMessage(`"ok"`),
			Logs: "log\n", StartedAt: now.Add(time.Duration(i) * time.Second), DurationMs: 3.5,
		})
	}
	if n > 0 {
		if err := s.InsertExecutions(t.Context(), execs); err != nil {
			t.Fatal(err)
		}
	}
	return fns
}

// assertHolds checks that s has fns, and n records of the first with
// their events.
func assertHolds(t *testing.T, s store.Store, fns []*fn.Function, n int) {
	t.Helper()
	for _, want := range fns {
		got, err := s.GetFunction(t.Context(), want.Name)
		if err != nil {
			t.Fatalf("GetFunction(%s): %v", want.Name, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("function %s:\n got %+v\nwant %+v", want.Name, got, want)
		}
	}
	execs, err := s.ListExecutions(t.Context(), fns[0].ID, store.ExecQuery{Limit: 1000})
	if err != nil || len(execs) != n {
		t.Fatalf("ListExecutions = %d records, %v; want %d", len(execs), err, n)
	}
	for _, e := range execs {
		full, err := s.GetExecution(t.Context(), e.FunctionID, e.ID)
		if err != nil || len(full.Event) == 0 {
			t.Fatalf("GetExecution(%s) = %+v, %v; want it with its event", e.ID, full, err)
		}
	}
}

func TestMigrateSQLiteToMongoDB(t *testing.T) {
	from := "sqlite:" + filepath.Join(t.TempDir(), "nimbus.db")
	to := mongotest.Shared(t).NewDatabase(t)
	fns := seed(t, openAt(t, from), 12)

	_, stderr, err := run(t, migrateCmd, nil, "", "--from", from, "--to", to, "--executions")
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if !strings.Contains(stderr, "copied 2 functions, 12 executions") {
		t.Errorf("migrate said %q", stderr)
	}
	assertHolds(t, openAt(t, to), fns, 12)

	// Again: the functions are there now.
	if _, _, err := run(t, migrateCmd, nil, "", "--from", from, "--to", to); err == nil || !strings.Contains(err.Error(), "--skip-existing") {
		t.Errorf("second migrate = %v, want a conflict suggesting --skip-existing", err)
	}
	_, stderr, err = run(t, migrateCmd, nil, "", "--from", from, "--to", to, "--skip-existing", "--executions")
	if err != nil || !strings.Contains(stderr, "2 functions skipped") {
		t.Errorf("migrate --skip-existing = %v, said %q", err, stderr)
	}
}

func TestExportFromMongoDBImportIntoSQLite(t *testing.T) {
	uri := mongotest.Shared(t).NewDatabase(t)
	fns := seed(t, openAt(t, uri), 5)
	file := filepath.Join(t.TempDir(), "nimbus.jsonl")

	// The store nimbus serve would use: MONGODB_URI.
	_, stderr, err := run(t, exportCmd, map[string]string{"MONGODB_URI": uri}, "", "--executions", "--output", file, "--env-file", "")
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	if !strings.Contains(stderr, "exported 2 functions, 5 executions") {
		t.Errorf("export said %q", stderr)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(string(data), "\n"); lines != 1+2+5 {
		t.Errorf("export has %d lines, want a header, 2 functions and 5 executions:\n%s", lines, data)
	}

	// Into the SQLite store of a new data dir, from standard input.
	dataDir := filepath.Join(t.TempDir(), "new", "data")
	_, stderr, err = run(t, importCmd, map[string]string{"NIMBUS_DATA_DIR": dataDir}, string(data), "--env-file", "")
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if !strings.Contains(stderr, "imported 2 functions, 5 executions") {
		t.Errorf("import said %q", stderr)
	}
	assertHolds(t, openAt(t, "sqlite:"+filepath.Join(dataDir, "nimbus.db")), fns, 5)

	// From the file, again: a conflict, unless told to skip.
	sqlite := "sqlite:" + filepath.Join(dataDir, "nimbus.db")
	if _, _, err := run(t, importCmd, nil, "", "--store", sqlite, file); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second import = %v, want a conflict", err)
	}
	if _, _, err := run(t, importCmd, nil, "", "--store", sqlite, "--skip-existing", file); err != nil {
		t.Errorf("import --skip-existing: %v", err)
	}
}

func TestExportWithoutExecutionsToStdout(t *testing.T) {
	loc := "sqlite:" + filepath.Join(t.TempDir(), "nimbus.db")
	seed(t, openAt(t, loc), 3)
	stdout, _, err := run(t, exportCmd, nil, "", "--store", loc)
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	if n := strings.Count(stdout, "\n"); n != 3 || strings.Contains(stdout, `"execution"`) {
		t.Errorf("export without --executions:\n%s", stdout)
	}
}

func TestStoreCommandErrors(t *testing.T) {
	loc := "sqlite:" + filepath.Join(t.TempDir(), "nimbus.db")
	tests := []struct {
		name string
		cmd  func(stdio) *cobra.Command
		args []string
		want string
	}{
		{"migrate without --to", migrateCmd, []string{"--from", loc}, "both --from and --to"},
		{"migrate onto itself", migrateCmd, []string{"--from", loc, "--to", loc}, "same store"},
		{"unknown store", migrateCmd, []string{"--from", "postgres://u:secret@h/db", "--to", loc}, "sqlite:PATH"},
		{"export with an operand", exportCmd, []string{"--store", loc, "extra"}, "unexpected argument"},
		{"import of a missing file", importCmd, []string{"--store", loc, "/nonexistent/x.jsonl"}, "no such file"},
		{"bad MONGODB_URI", exportCmd, []string{"--env-file", ""}, "MONGODB_URI"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"MONGODB_URI": "postgres://x"}
			_, _, err := run(t, tc.cmd, env, "", tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("error shows a password: %v", err)
			}
		})
	}
}

// TestExportSecrets: an export holds no secret unless asked, and then
// only sealed for the importing server's key, which opens it there.
func TestExportSecrets(t *testing.T) {
	dir := t.TempDir()
	loc := "sqlite:" + filepath.Join(dir, "nimbus.db")
	src := openAt(t, loc)
	seed(t, src, 0)
	ring, _, err := auth.LoadKeyring("", "", dir) // the key file nimbus serve would make
	if err != nil {
		t.Fatal(err)
	}
	plain := "pl41n-" + fn.NewID()
	if _, err := auth.NewSecrets(src.(store.AuthStore), ring, nil).Create(t.Context(), "db", plain, "the database"); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"NIMBUS_DATA_DIR": dir}
	stdout, _, err := run(t, exportCmd, env, "", "--store", loc)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stdout, `"secret"`) || strings.Contains(stdout, plain) {
		t.Errorf("an export without --with-secrets has secrets:\n%s", stdout)
	}
	target := strings.Repeat("7", 64)
	stdout, stderr, err := run(t, exportCmd, env, "", "--store", loc, "--with-secrets", "--to-key", target)
	if err != nil {
		t.Fatalf("export --with-secrets: %v %s", err, stderr)
	}
	if !strings.Contains(stdout, `"secret"`) || strings.Contains(stdout, plain) || !strings.Contains(stderr, "1 secrets") {
		t.Fatalf("export --with-secrets (%s):\n%s", stderr, stdout)
	}
	dst := "sqlite:" + filepath.Join(t.TempDir(), "nimbus.db")
	if _, _, err := run(t, importCmd, nil, stdout, "--store", dst); err != nil {
		t.Fatalf("import: %v", err)
	}
	to, err := auth.NewKeyring(bytes.Repeat([]byte{0x77}, 32))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := auth.NewSecrets(openAt(t, dst).(store.AuthStore), to, nil).Reveal(t.Context(), "db"); err != nil || v != plain {
		t.Errorf("the imported secret under the target key: %q, %v", v, err)
	}
	// Without a key to open them, export refuses rather than guess.
	if _, _, err := run(t, exportCmd, map[string]string{"NIMBUS_DATA_DIR": t.TempDir()}, "", "--store", loc, "--with-secrets"); err == nil || !strings.Contains(err.Error(), "NIMBUS_SECRETS_KEY") {
		t.Errorf("export --with-secrets without the key: %v", err)
	}
}
