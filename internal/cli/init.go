package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// initTemplate is what `nimbus init` writes for one runtime: the UI's
// "hello world" template (internal/web/static/app.js) as a file.
type initTemplate struct {
	file, handler, code string
}

var initTemplates = map[string]initTemplate{
	"python": {"main.py", "main.handler", `def handler(event, context):
    name = event.get("name", "world")
    print(f"saying hello to {name}")
    return {"message": f"Hello, {name}!"}
`},
	"nodejs": {"index.js", "index.handler", "exports.handler = async (event, context) => {\n" +
		"  const name = event.name || \"world\";\n" +
		"  console.log(\"saying hello to\", name);\n" +
		"  return { message: `Hello, ${name}!` };\n" +
		"};\n"},
}

// InitRuntimes are the runtimes init has a template for.
var InitRuntimes = []string{"python", "nodejs"}

// Init writes a function directory at dir: the handler, a nimbus.yaml
// naming it, an event.json to call it with and a .nimbusignore. It
// refuses a directory that already has a spec. It returns the files
// written.
func Init(dir, name, runtime string) ([]string, error) {
	rt, err := fn.CanonicalRuntime(runtime)
	if err != nil {
		return nil, err
	}
	tpl, ok := initTemplates[rt]
	if !ok {
		return nil, fmt.Errorf("init: no template for %s (want %s)", rt, strings.Join(InitRuntimes, " or "))
	}
	probe := fn.Function{Name: name, Runtime: rt}
	if err := probe.Normalize(fn.Defaults{TimeoutMs: 1000, MemoryMB: 128}); err != nil {
		var fe *fn.FieldError
		if errors.As(err, &fe) && fe.Field != "name" {
			err = nil // only the name is checked here
		}
		if err != nil {
			return nil, fmt.Errorf("init: %w", err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, SpecFile)); err == nil {
		return nil, fmt.Errorf("init: %s already has a %s", dir, SpecFile)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	spec := fmt.Sprintf(`# nimbus deploy reads this file; docs/nimbus.schema.json describes it.
functions:
  - name: %s
    runtime: %s
    handler: %s
    code: .          # the directory packed, less what .nimbusignore names
    memory: 128      # MB
    timeout: 3000    # ms
    env:
      GREETING: hello  # ${VAR} takes VAR from the environment of nimbus deploy
`, name, rt, tpl.handler)
	files := []struct{ name, body string }{
		{tpl.file, tpl.code},
		{SpecFile, spec},
		{"event.json", "{\"name\": \"Ada\"}\n"},
		{IgnoreFile, "# left out of the deployed code (gitignore syntax)\nevent.json\n*.zip\n__pycache__/\n"},
	}
	var wrote []string
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if _, err := os.Stat(p); err == nil {
			continue // keep what is there
		}
		if err := os.WriteFile(p, []byte(f.body), 0o644); err != nil {
			return wrote, err
		}
		wrote = append(wrote, p)
	}
	return wrote, nil
}
