package fn_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

var defaults = fn.Defaults{TimeoutMs: 30000, MemoryMB: 128}

func TestNormalizeFillsDefaults(t *testing.T) {
	f := &fn.Function{Name: "hello", Runtime: "python3.11", Code: "def handler(e, c): return 1"}
	if err := f.Normalize(defaults); err != nil {
		t.Fatal(err)
	}
	if f.Runtime != runtime.Python || f.Handler != "main.handler" || f.Timeout != 30000 || f.Memory != 128 ||
		f.Driver != "sandbox" || f.MaxInstances != fn.DefaultMaxInstances || f.Files["main.py"] == "" || f.Code != "" ||
		f.MinInstances != 0 || f.Concurrency != 1 || f.KeepAlive != 0 {
		t.Fatalf("normalized: %+v", f)
	}
	g := &fn.Function{Name: "web", Runtime: "nodejs20.x", Files: map[string]string{"lib/app.js": "x"}, Handler: "lib/app.handler"}
	if err := g.Normalize(defaults); err != nil {
		t.Fatal(err)
	}
	if g.Runtime != runtime.NodeJS || g.ModuleFile() != "lib/app.js" {
		t.Fatalf("node: runtime %q module %q", g.Runtime, g.ModuleFile())
	}
}

// A driver is stored by the name it is registered by, whatever the user
// called it.
func TestNormalizeResolvesDriverAliases(t *testing.T) {
	for _, tc := range []struct{ name, given, want string }{
		{"default", "", fn.DefaultDriver},
		{"canonical", "microvm", "microvm"},
		{"alias", "firecracker", "microvm"},
		{"alias in capitals", "Firecracker", "microvm"},
		{"upper case", "DOCKER", "docker"},
		{"unknown stays for the engine to reject", "kvm", "kvm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fn.Function{Name: "hello", Runtime: "python", Code: "x = 1", Driver: tc.given}
			if err := f.Normalize(defaults); err != nil {
				t.Fatal(err)
			}
			if f.Driver != tc.want {
				t.Fatalf("driver %q normalized to %q, want %q", tc.given, f.Driver, tc.want)
			}
		})
	}
}

func TestNormalizeNamesTheBadField(t *testing.T) {
	ok := func() *fn.Function {
		return &fn.Function{Name: "ok", Runtime: "python", Code: "x = 1"}
	}
	cases := []struct {
		name  string
		edit  func(*fn.Function)
		field string
	}{
		{"missing name", func(f *fn.Function) { f.Name = "" }, "name"},
		{"uppercase name", func(f *fn.Function) { f.Name = "Hello" }, "name"},
		{"name with slash", func(f *fn.Function) { f.Name = "a/b" }, "name"},
		{"long name", func(f *fn.Function) { f.Name = strings.Repeat("a", 64) }, "name"},
		{"id-shaped name", func(f *fn.Function) { f.Name = fn.NewID() }, "name"},
		{"hex name of an id's length", func(f *fn.Function) { f.Name = "0123456789abcdef01234567" }, "name"},
		{"unknown runtime", func(f *fn.Function) { f.Runtime = "ruby3.2" }, "runtime"},
		{"python2", func(f *fn.Function) { f.Runtime = "python2.7" }, "runtime"},
		{"no runtime", func(f *fn.Function) { f.Runtime = "" }, "runtime"},
		{"no code", func(f *fn.Function) { f.Code = "" }, "code"},
		{"code and files", func(f *fn.Function) { f.Files = map[string]string{"a.py": ""} }, "code"},
		{"escaping path", func(f *fn.Function) { f.Code = ""; f.Files = map[string]string{"../main.py": "x"} }, "files"},
		{"absolute path", func(f *fn.Function) { f.Code = ""; f.Files = map[string]string{"/main.py": "x"} }, "files"},
		{"handler file missing", func(f *fn.Function) { f.Code = ""; f.Files = map[string]string{"other.py": "x"} }, "handler"},
		{"bad handler", func(f *fn.Function) { f.Handler = "nodot" }, "handler"},
		{"long handler", func(f *fn.Function) { f.Handler = strings.Repeat("a", 130) + ".handler" }, "handler"},
		{"long file name", func(f *fn.Function) {
			f.Files = map[string]string{"main.py": "x", strings.Repeat("n", 256) + ".py": "x"}
			f.Code = ""
		}, "files"},
		{"long path", func(f *fn.Function) {
			f.Files = map[string]string{"main.py": "x", strings.Repeat("d/", 512) + "x.py": "x"}
			f.Code = ""
		}, "files"},
		{"non-UTF-8 path", func(f *fn.Function) { f.Code = ""; f.Files = map[string]string{"main.py": "x", "\xff.py": "x"} }, "files"},
		{"file over a directory", func(f *fn.Function) {
			f.Code = ""
			f.Files = map[string]string{"main.py": "x", "lib": "x", "lib/a.py": "x"}
		}, "files"},
		{"bad env key", func(f *fn.Function) { f.Env = map[string]string{"1X": "y"} }, "env"},
		{"reserved env", func(f *fn.Function) { f.Env = map[string]string{"LD_PRELOAD": "/x.so"} }, "env"},
		{"huge env", func(f *fn.Function) { f.Env = map[string]string{"X": strings.Repeat("v", 5000)} }, "env"},
		{"timeout too long", func(f *fn.Function) { f.Timeout = 16 * 60 * 1000 }, "timeout"},
		{"negative timeout", func(f *fn.Function) { f.Timeout = -1 }, "timeout"},
		{"memory too small", func(f *fn.Function) { f.Memory = 8 }, "memory"},
		{"max instances", func(f *fn.Function) { f.MaxInstances = -1 }, "maxInstances"},
		{"min over max", func(f *fn.Function) { f.MaxInstances, f.MinInstances = 2, 3 }, "minInstances"},
		{"negative min", func(f *fn.Function) { f.MinInstances = -1 }, "minInstances"},
		{"concurrency", func(f *fn.Function) { f.Concurrency = 1001 }, "concurrency"},
		{"negative keep-alive", func(f *fn.Function) { f.KeepAlive = -5 }, "keepAlive"},
		{"keep-alive over a day", func(f *fn.Function) { f.KeepAlive = fn.MaxKeepAliveMs + 1 }, "keepAlive"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := ok()
			tc.edit(f)
			err := f.Normalize(defaults)
			var fe *fn.FieldError
			if !errors.As(err, &fe) || !errors.Is(err, fn.ErrInvalid) {
				t.Fatalf("err = %v, want a FieldError", err)
			}
			if fe.Field != tc.field {
				t.Fatalf("field = %q (%v), want %q", fe.Field, err, tc.field)
			}
		})
	}
}

func TestNewIDIsOrdered(t *testing.T) {
	prev := fn.NewID()
	for range 10000 {
		id := fn.NewID()
		if len(id) != 24 || id <= prev {
			t.Fatalf("id %q after %q", id, prev)
		}
		prev = id
	}
}

func TestLooksLikeID(t *testing.T) {
	cases := []struct {
		s    string
		want bool
	}{
		{fn.NewID(), true},
		{"0123456789abcdef01234567", true},
		{"0123456789ABCDEF01234567", false}, // NewID writes lowercase
		{"0123456789abcdef0123456", false},
		{"0123456789abcdef012345678", false},
		{"0123456789abcdef0123456g", false},
		{"hello", false},
		{"", false},
	}
	for _, tc := range cases {
		if got := fn.LooksLikeID(tc.s); got != tc.want {
			t.Errorf("LooksLikeID(%q) = %v, want %v", tc.s, got, tc.want)
		}
	}
	// Names one character off an id's shape stay valid.
	for _, name := range []string{"0123456789abcdef0123456", "0123456789abcdef01234567x", "deadbeef"} {
		f := &fn.Function{Name: name, Runtime: "python", Code: "x = 1"}
		if err := f.Normalize(defaults); err != nil {
			t.Errorf("name %q: %v", name, err)
		}
	}
}

func TestSameConfigSeesEveryRunningField(t *testing.T) {
	base := func() *fn.Function {
		f := &fn.Function{Name: "f", Runtime: runtime.Python, Code: "def handler(e, c):\n    return 1\n"}
		if err := f.Normalize(fn.Defaults{TimeoutMs: 1000, MemoryMB: 128}); err != nil {
			t.Fatal(err)
		}
		return f
	}
	cases := []struct {
		name   string
		change func(*fn.Function)
	}{
		{"network", func(f *fn.Function) { f.Network = true }},
		{"memory", func(f *fn.Function) { f.Memory = 256 }},
		{"env", func(f *fn.Function) { f.Env = map[string]string{"A": "b"} }},
		{"min instances", func(f *fn.Function) { f.MinInstances = 1 }},
		{"concurrency", func(f *fn.Function) { f.Concurrency = 4 }},
		{"keep-alive", func(f *fn.Function) { f.KeepAlive = 1000 }},
		{"url enabled", func(f *fn.Function) { f.URL = &fn.URLConfig{Enabled: true, Auth: fn.URLAuthKey} }},
		{"url cors", func(f *fn.Function) {
			f.URL = &fn.URLConfig{Enabled: true, Auth: fn.URLAuthKey, CORS: &fn.CORS{AllowOrigins: []string{"*"}}}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := base(), base()
			if !fn.SameConfig(a, b) {
				t.Fatal("identical functions differ")
			}
			tc.change(b)
			if fn.SameConfig(a, b) {
				t.Errorf("a change of %s is not seen", tc.name)
			}
		})
	}
}
