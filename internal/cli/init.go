package cli

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// initTemplate is what `nimbus init` writes for one runtime: the UI's
// "hello world" template (internal/web/static/app.js) as files.
type initTemplate struct {
	runtime string // as the spec names it
	handler string
	files   map[string]string // name → content
	ignore  string            // what .nimbusignore leaves out, besides the usual
}

// LambdaGo is the aws-lambda-go module the Go template requires, with its
// go.sum lines: the version this repository requires (a test checks).
const (
	LambdaGo     = "github.com/aws/aws-lambda-go v1.55.1"
	lambdaGoSums = "github.com/aws/aws-lambda-go v1.55.1 h1:We2cCp4BwqqH/JW+bEEo1FhgG71rslvjfi4y7KmlrR0=\n" +
		"github.com/aws/aws-lambda-go v1.55.1/go.mod h1:V+NzkHNR6vBC8C1PDloqSLE+7jYWFiPvJJFiCiTm8nE=\n"
)

var initTemplates = map[string]initTemplate{
	"python": {runtime: "python", handler: "main.handler", files: map[string]string{"main.py": `def handler(event, context):
    name = event.get("name", "world")
    print(f"saying hello to {name}")
    return {"message": f"Hello, {name}!"}
`}},
	"nodejs": {runtime: "nodejs", handler: "index.handler", files: map[string]string{"index.js": "exports.handler = async (event, context) => {\n" +
		"  const name = event.name || \"world\";\n" +
		"  console.log(\"saying hello to\", name);\n" +
		"  return { message: `Hello, ${name}!` };\n" +
		"};\n"}},
	// Go (the provided runtime): Nimbus builds the module at deploy into
	// the bootstrap the Runtime API runs; the handler names nothing. go
	// 1.26: what aws-lambda-go v1.55.1 itself requires.
	"provided": {runtime: "go", handler: "main", ignore: "bootstrap\n", files: map[string]string{
		"go.mod": "module hello\n\ngo 1.26\n\nrequire " + LambdaGo + "\n",
		"go.sum": lambdaGoSums,
		"main.go": `package main

import (
	"context"
	"fmt"

	"github.com/aws/aws-lambda-go/lambda"
)

type event struct {
	Name string ` + "`json:\"name\"`" + `
}

func handler(ctx context.Context, e event) (map[string]string, error) {
	name := e.Name
	if name == "" {
		name = "world"
	}
	fmt.Println("saying hello to", name)
	return map[string]string{"message": "Hello, " + name + "!"}, nil
}

func main() { lambda.Start(handler) }
`}},
}

// TemplateFiles are the files of init's template for runtime (its
// canonical name), nil if there is none.
func TemplateFiles(runtime string) map[string]string {
	return maps.Clone(initTemplates[runtime].files)
}

// InitRuntimes are the runtimes init has a template for.
var InitRuntimes = []string{"python", "nodejs", "go"}

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
`, name, tpl.runtime, tpl.handler)
	var files []struct{ name, body string }
	for _, name := range slices.Sorted(maps.Keys(tpl.files)) {
		files = append(files, struct{ name, body string }{name, tpl.files[name]})
	}
	files = append(files, []struct{ name, body string }{
		{SpecFile, spec},
		{"event.json", "{\"name\": \"Ada\"}\n"},
		{IgnoreFile, "# left out of the deployed code (gitignore syntax)\nevent.json\n*.zip\n__pycache__/\n" + tpl.ignore},
	}...)
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
