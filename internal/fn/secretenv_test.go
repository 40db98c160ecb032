package fn_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// fullFunction sets every field that is encoded.
func fullFunction() *fn.Function {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	return &fn.Function{
		ID: "0123456789abcdef01234567", Name: "full", Runtime: "python", Handler: "main.handler",
		Code: "x = 1", Files: fn.Files{"main.py": "x = 1"}, ZipFile: []byte("PK"),
		CodeInfo: &fn.CodeInfo{SHA256: strings.Repeat("a", 64), Size: 5, Files: []fn.FileInfo{{Path: "main.py", Size: 5}}},
		Layers:   []string{strings.Repeat("b", 64)}, Build: &fn.BuildSettings{Scripts: true},
		Env:       map[string]string{"MODE": "prod", "EMPTY": ""},
		SecretEnv: map[string]string{"DB_PASSWORD": "db-password"},
		Timeout:   1000, Memory: 128, Driver: "sandbox", MaxInstances: 3, MinInstances: 1, Concurrency: 2,
		KeepAlive: 5000, Network: true, URL: &fn.URLConfig{Enabled: true},
		Async:      &fn.AsyncConfig{MaxRetries: new(int)},
		Schedules:  []fn.Schedule{{Name: "tick", Rate: "5 minutes", Event: json.RawMessage(`{"a":1}`)}},
		TestEvents: []fn.TestEvent{{Name: "t", Event: json.RawMessage(`{"b":2}`)}},
		Revision:   4, Version: 2, CreatedAt: at, UpdatedAt: at.Add(time.Second),
	}
}

func TestFunctionJSONRoundTrips(t *testing.T) {
	want := fullFunction()
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var got fn.Function
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&got, want) {
		t.Fatalf("round trip changed the function:\n got %+v\nwant %+v", &got, want)
	}
	// Every field but env is encoded as encoding/json encodes it.
	type plain fn.Function
	p := plain(*want)
	p.Env = nil
	var asPlain, asFunc map[string]json.RawMessage
	pb, _ := json.Marshal(p)
	_ = json.Unmarshal(pb, &asPlain)
	_ = json.Unmarshal(b, &asFunc)
	for k, v := range asPlain {
		if k != "env" && string(asFunc[k]) != string(v) {
			t.Errorf("%s: %s, want %s", k, asFunc[k], v)
		}
	}
	if len(asFunc) != len(asPlain) {
		t.Errorf("%d fields, want %d", len(asFunc), len(asPlain))
	}
	if got, want := string(asFunc["env"]), `{"DB_PASSWORD":{"secret":"db-password"},"EMPTY":"","MODE":"prod"}`; got != want {
		t.Errorf("env %s, want %s", got, want)
	}
}

func TestFunctionJSONNeverHoldsSecretValues(t *testing.T) {
	f := fullFunction()
	f.Secrets = map[string]string{"DB_PASSWORD": "hunter2"}
	for _, v := range []any{f, *f, &fn.Version{Function: f}, []*fn.Function{f}} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "hunter2") {
			t.Fatalf("%T encodes a secret value: %s", v, b)
		}
	}
}

func TestFunctionJSONEnvShapes(t *testing.T) {
	for _, tc := range []struct {
		name, env string
		plain     map[string]string
		secret    map[string]string
		bad       bool
	}{
		{name: "absent", env: ""},
		{name: "null", env: `,"env":null`},
		{name: "empty", env: `,"env":{}`, plain: map[string]string{}},
		{name: "mixed", env: `,"env":{"A":"1","B":{"secret":"b"}}`, plain: map[string]string{"A": "1"}, secret: map[string]string{"B": "b"}},
		{name: "number secret", env: `,"env":{"B":{"secret":5}}`, bad: true},
		{name: "other object", env: `,"env":{"B":{"x":1}}`, bad: true},
		{name: "extra member", env: `,"env":{"B":{"secret":"a","b":1}}`, bad: true},
		{name: "number", env: `,"env":{"B":1}`, bad: true},
		{name: "array", env: `,"env":{"B":["a"]}`, bad: true},
		{name: "not an object", env: `,"env":"A=1"`, bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f fn.Function
			err := json.Unmarshal([]byte(`{"name":"a"`+tc.env+`}`), &f)
			if tc.bad {
				var fe *fn.FieldError
				if !errors.As(err, &fe) || fe.Field != "env" || !errors.Is(err, fn.ErrInvalid) {
					t.Fatalf("err = %v, want an invalid env", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(f.Env, tc.plain) || !reflect.DeepEqual(f.SecretEnv, tc.secret) {
				t.Fatalf("env %v secrets %v, want %v %v", f.Env, f.SecretEnv, tc.plain, tc.secret)
			}
		})
	}
}

func TestVersionJSONKeepsItsFields(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	v := &fn.Version{Function: fullFunction(), Description: "first", ConfigHash: "abc", PublishedAt: at}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var got fn.Version
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&got, v) {
		t.Fatalf("version changed:\n got %+v %+v\nwant %+v %+v\n%s", got, got.Function, v, v.Function, b)
	}
	if !strings.Contains(string(b), `"description":"first"`) || !strings.Contains(string(b), `"DB_PASSWORD":{"secret":"db-password"}`) {
		t.Fatalf("encoded %s", b)
	}
}

func TestUnmarshalStrictRefusesUnknownFields(t *testing.T) {
	var f fn.Function
	if err := fn.UnmarshalStrict([]byte(`{"name":"a","colour":"blue"}`), &f); err == nil || !strings.Contains(err.Error(), `unknown field "colour"`) {
		t.Fatalf("err = %v", err)
	}
	if err := fn.UnmarshalStrict([]byte(`{"name":"a","Timeout":5,"env":{"A":{"secret":"a"}}}`), &f); err != nil {
		t.Fatal(err)
	}
	if f.Timeout != 5 || f.SecretEnv["A"] != "a" {
		t.Fatalf("decoded %+v", f)
	}
}

func TestNormalizeChecksSecretEnv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		plain   map[string]string
		secrets map[string]string
		want    string
	}{
		{"bad variable", nil, map[string]string{"1A": "a"}, "not a valid variable name"},
		{"reserved variable", nil, map[string]string{"NIMBUS_X": "a"}, "reserved"},
		{"both plain and secret", map[string]string{"A": "1"}, map[string]string{"A": "a"}, "both a plain variable and a secret"},
		{"bad secret name", nil, map[string]string{"A": "-a"}, "not a secret name"},
		{"empty secret name", nil, map[string]string{"A": ""}, "not a secret name"},
		{"over the budget", map[string]string{"A": strings.Repeat("x", fn.MaxEnvBytes-10)}, map[string]string{"B": strings.Repeat("s", 20)}, "more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fn.Function{Name: "ok", Runtime: "python", Code: "x = 1", Env: tc.plain, SecretEnv: tc.secrets}
			err := f.Normalize(defaults)
			var fe *fn.FieldError
			if !errors.As(err, &fe) || fe.Field != "env" || !strings.Contains(fe.Message, tc.want) {
				t.Fatalf("err = %v, want env: …%s…", err, tc.want)
			}
		})
	}
	f := &fn.Function{Name: "ok", Runtime: "python", Code: "x = 1", SecretEnv: map[string]string{"DB_PASSWORD": "db.password-1"}}
	if err := f.Normalize(defaults); err != nil {
		t.Fatal(err)
	}
}

// A change of the references is a change of the function and of what
// it runs; a function without references hashes as before.
func TestSecretEnvChangesConfigAndBehaviour(t *testing.T) {
	a := fullFunction()
	b := fullFunction()
	if !fn.SameConfig(a, b) || a.BehaviourHash() != b.BehaviourHash() {
		t.Fatal("equal functions differ")
	}
	b.SecretEnv = map[string]string{"DB_PASSWORD": "other"}
	if fn.SameConfig(a, b) || a.BehaviourHash() == b.BehaviourHash() {
		t.Fatal("another secret is the same function")
	}
	b.SecretEnv = nil
	c := fullFunction()
	c.SecretEnv = map[string]string{}
	if !fn.SameConfig(b, c) || b.BehaviourHash() != c.BehaviourHash() {
		t.Fatal("no references and empty references differ")
	}
}
