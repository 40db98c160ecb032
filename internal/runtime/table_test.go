package runtime_test

import (
	"os"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// TestTable checks every descriptor is complete and that no two runtimes
// claim one spelling or one installed file.
func TestTable(t *testing.T) {
	shims, err := runtime.InstallShims(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	spelledBy := map[string]string{}
	fileOf := map[string]string{}
	for _, r := range runtime.All() {
		t.Run(r.Name, func(t *testing.T) {
			fields := map[string]string{"Name": r.Name, "Label": r.Label, "DefaultHandler": r.DefaultHandler}
			if r.Relayed() {
				// The relay runs the function's own executable: nothing of
				// an interpreter may be set, or some part would look for it.
				for field, v := range map[string]string{"Command": r.Command, "Env": r.Env, "Shim": r.Shim, "Zygote": r.Zygote, "Agent": r.Agent} {
					if v != "" {
						t.Errorf("%s is %q for a relayed runtime", field, v)
					}
				}
				if got := r.ModuleFiles("anything.handler"); !slices.Equal(got, append([]string{r.Entry}, r.EntrySources...)) {
					t.Errorf("ModuleFiles = %q, want the entry %q, then its sources", got, r.Entry)
				}
			} else {
				for k, v := range map[string]string{"Ext": r.Ext, "Command": r.Command, "Env": r.Env, "Dir": r.Dir,
					"Shim": r.Shim, "Agent": r.Agent, "Image.DockerImage": r.Image.DockerImage} {
					fields[k] = v
				}
				if len(r.Probe) == 0 {
					t.Error("no probe arguments")
				}
			}
			for field, v := range fields {
				if v == "" {
					t.Errorf("%s is empty", field)
				}
			}
			if r.Name != strings.ToLower(r.Name) {
				t.Errorf("name %q is not lower case", r.Name)
			}
			if got, ok := runtime.Lookup(r.Name); !ok || got != r {
				t.Errorf("Lookup(%q) = %v, %v", r.Name, got, ok)
			}
			for _, s := range append([]string{r.Name}, r.Spellings...) {
				if other, ok := spelledBy[s]; ok {
					t.Errorf("spelling %q is both %s's and %s's", s, other, r.Name)
				}
				spelledBy[s] = r.Name
				if got, ok := runtime.Find(strings.ToUpper(s)); !ok || got != r {
					t.Errorf("Find(%q) = %v, %v", s, got, ok)
				}
			}
			mods := r.ModuleFiles(r.DefaultHandler)
			if len(mods) == 0 || path.Ext(mods[0]) != r.Ext {
				t.Errorf("default handler %q's module files %q, want the first with %s", r.DefaultHandler, mods, r.Ext)
			}
			if r.Check != nil && (r.Check.Script == "" || len(r.Check.Exts)+len(r.Check.Names) == 0) {
				t.Errorf("checker %+v names no script or no files", r.Check)
			}
			if r.Check != nil && !slices.Contains(r.Check.Exts, r.Ext) {
				t.Errorf("checker %+v does not check %s files", r.Check, r.Ext)
			}
			for _, f := range []struct{ name, path string }{{r.Shim, shims.Shim(r.Name)}, {r.Zygote, shims.Zygote(r.Name)}} {
				if f.name == "" {
					continue
				}
				if other, ok := fileOf[f.name]; ok {
					t.Errorf("installed file %s is both %s's and %s's", f.name, other, r.Name)
				}
				fileOf[f.name] = r.Name
				if fi, err := os.Stat(f.path); err != nil || fi.Size() == 0 {
					t.Errorf("installed %s: %v", f.name, err)
				}
			}
		})
	}
	// Every spelling is one runtime's only.
	for s, name := range spelledBy {
		for _, r := range runtime.All() {
			if r.Name != name && r.Accepts(s) {
				t.Errorf("%s also accepts %s's spelling %q", r.Name, name, s)
			}
		}
	}
}

// TestFind checks the spellings users write, versioned ones included.
func TestFind(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"python", runtime.Python}, {"Python3", runtime.Python}, {" python3.12 ", runtime.Python}, {"python3.8", runtime.Python},
		{"nodejs", runtime.NodeJS}, {"node", runtime.NodeJS}, {"nodejs20.x", runtime.NodeJS}, {"node18", runtime.NodeJS}, {"JavaScript", runtime.NodeJS},
		{"provided", runtime.Provided}, {"provided.al2", runtime.Provided}, {"PROVIDED.AL2023", runtime.Provided}, {"go", runtime.Provided},
		{"python2", ""}, {"python3.7", ""}, {"nodejs12.x", ""}, {"ruby", ""}, {"", ""},
	} {
		got := ""
		if r, ok := runtime.Find(tt.in); ok {
			got = r.Name
		}
		if got != tt.want {
			t.Errorf("Find(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestModuleFiles checks where a handler's module lives.
func TestModuleFiles(t *testing.T) {
	py, _ := runtime.Lookup(runtime.Python)
	node, _ := runtime.Lookup(runtime.NodeJS)
	provided, _ := runtime.Lookup(runtime.Provided)
	for _, tt := range []struct {
		r       *runtime.Runtime
		handler string
		want    string
	}{
		{py, "main.handler", "main.py"},
		{py, "pkg.mod.handler", "pkg/mod.py"},
		{node, "index.handler", "index.js index.mjs"},
		{node, "lib/app.handler", "lib/app.js lib/app.mjs"},
		{provided, "bootstrap", "bootstrap go.mod"},
		{provided, "hello.handler", "bootstrap go.mod"},
	} {
		if got := strings.Join(tt.r.ModuleFiles(tt.handler), " "); got != tt.want {
			t.Errorf("%s ModuleFiles(%q) = %q, want %q", tt.r.Name, tt.handler, got, tt.want)
		}
	}
}
