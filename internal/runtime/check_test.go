package runtime_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/runtime"
)

func TestCheckSyntax(t *testing.T) {
	tests := []struct {
		runtime  string
		name     string
		files    map[string]string
		wantFile string // "" for no error
		wantLine int
		wantMsg  string // substring
	}{
		{runtime.Python, "good", map[string]string{
			"main.py":         "import json\n\ndef handler(event, context):\n    return json.dumps(event)\n",
			"pkg/__init__.py": "",
			"pkg/util.py":     "async def f():\n    await g()\n",
			"README.md":       "not python (",
		}, "", 0, ""},
		{runtime.Python, "invalid syntax", map[string]string{
			"main.py": "def handler(event, context):\n    x = 1\n    return x +\n",
		}, "main.py", 3, "invalid syntax"},
		{runtime.Python, "unclosed bracket in a package", map[string]string{
			"main.py":     "def handler(event, context):\n    return 1\n",
			"pkg/util.py": "X = 1\nY = [1,\n     2\n",
		}, "pkg/util.py", 2, "never closed"},
		{runtime.Python, "indentation", map[string]string{
			"main.py": "def handler(event, context):\nreturn 1\n",
		}, "main.py", 2, "indented block"},
		{runtime.Python, "compile-time error", map[string]string{
			"main.py": "x = 1\nreturn x\n",
		}, "main.py", 2, "'return' outside function"},
		{runtime.Python, "not run", map[string]string{
			"main.py": "import sys\nsys.exit(3)\nraise SystemExit(4)\n",
		}, "", 0, ""},

		{runtime.NodeJS, "good", map[string]string{
			"index.js":       "#!/usr/bin/env node\nconst x = require('./lib/x');\nexports.handler = async () => x;\n",
			"lib/x.cjs":      "module.exports = 1;\n",
			"esm/index.mjs":  "import fs from 'fs';\nconst a = await Promise.resolve(1);\nexport const handler = () => a;\n",
			"detect/main.js": "import { x } from './y.js';\nexport default x;\n",
			"notes.txt":      "not js (",
		}, "", 0, ""},
		{runtime.NodeJS, "CommonJS", map[string]string{
			"index.js": "exports.handler = async () => {\n  return 1;\n}}\n",
		}, "index.js", 3, "Unexpected token '}'"},
		{runtime.NodeJS, "CommonJS .cjs", map[string]string{
			"index.js":   "exports.handler = () => 1;\n",
			"lib/db.cjs": "const a = 1;\nconst a = 2;\n",
		}, "lib/db.cjs", 2, "already been declared"},
		{runtime.NodeJS, "ESM .mjs", map[string]string{
			"index.mjs": "export const handler = async () => 1;\n\nexport const broken = (;\n",
		}, "index.mjs", 3, "Unexpected token"},
		{runtime.NodeJS, "ESM .js in a module package", map[string]string{
			"package.json": `{"type": "module"}`,
			"index.js":     "export const handler = () => 1;\nwith (Math) { x = 1; }\n",
		}, "index.js", 2, "Strict mode code may not include a with statement"},
		{runtime.NodeJS, "ESM syntax in a .js file", map[string]string{
			"index.js": "import x from './x.js';\nexport const handler = () => x\nlet let = 1;\n",
		}, "index.js", 3, "strict mode reserved word"},
		{runtime.NodeJS, "ESM syntax in a commonjs package", map[string]string{
			"package.json": `{"type": "commonjs"}`,
			"index.js":     "export const handler = () => 1;\n",
		}, "index.js", 1, "Unexpected token 'export'"},
		{runtime.NodeJS, "not run", map[string]string{
			"index.js": "process.exit(3);\nwhile (true) {}\n",
		}, "", 0, ""},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.runtime+"/"+tt.name, func(t *testing.T) {
			in := interpreters(t)
			interpreter(t, tt.runtime)
			err := runtime.CheckSyntax(ctx, in, tt.runtime, tt.files)
			if tt.wantFile == "" {
				if err != nil {
					t.Fatalf("CheckSyntax: %v", err)
				}
				return
			}
			var se *runtime.SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("CheckSyntax: %v, want a *SyntaxError", err)
			}
			if se.File != tt.wantFile || se.Line != tt.wantLine || !strings.Contains(se.Message, tt.wantMsg) {
				t.Errorf("got %s:%d %q, want %s:%d containing %q", se.File, se.Line, se.Message, tt.wantFile, tt.wantLine, tt.wantMsg)
			}
			if want := tt.wantFile + " line "; !strings.HasPrefix(se.Error(), want) {
				t.Errorf("Error() = %q, want it to start %q", se.Error(), want)
			}
		})
	}
}

func TestCheckSyntaxFirstErrorInPathOrder(t *testing.T) {
	interpreter(t, runtime.Python)
	err := runtime.CheckSyntax(context.Background(), interpreters(t), runtime.Python, map[string]string{
		"b.py": "(\n",
		"a.py": "x = 1\n)\n",
	})
	var se *runtime.SyntaxError
	if !errors.As(err, &se) || se.File != "a.py" || se.Line != 2 {
		t.Errorf("CheckSyntax: %v, want a.py line 2", err)
	}
}

func TestCheckSyntaxCannotRun(t *testing.T) {
	tests := []struct {
		name    string
		in      runtime.Interpreters
		runtime string
	}{
		{"no python", runtime.Interpreters{}, runtime.Python},
		{"no node", runtime.Interpreters{}, runtime.NodeJS},
		{"missing binary", runtime.Interpreters{runtime.Python: {Path: "/nonexistent/python3"}}, runtime.Python},
		{"unknown runtime", runtime.Interpreters{runtime.Python: {Path: "/bin/true"}}, "ruby"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := runtime.CheckSyntax(context.Background(), tt.in, tt.runtime, map[string]string{"main.py": "x", "index.js": "x"})
			var se *runtime.SyntaxError
			if err == nil || errors.As(err, &se) {
				t.Errorf("CheckSyntax: %v, want a plain error", err)
			}
		})
	}
}

func TestSyntaxErrorMessage(t *testing.T) {
	tests := []struct {
		err  runtime.SyntaxError
		want string
	}{
		{runtime.SyntaxError{File: "main.py", Line: 3, Message: "invalid syntax"}, "main.py line 3: invalid syntax"},
		{runtime.SyntaxError{File: "main.py", Message: "source code cannot contain null bytes"}, "main.py: source code cannot contain null bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}
