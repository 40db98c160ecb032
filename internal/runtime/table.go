package runtime

import (
	"embed"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// Names of the built-in runtimes: what a function stores as its runtime.
const (
	Python   = "python"
	NodeJS   = "nodejs"
	Provided = "provided" // any executable bootstrap, through the Runtime API
)

// Environment variables that override where the interpreters are.
const (
	EnvPython = "NIMBUS_PYTHON"
	EnvNode   = "NIMBUS_NODE"
)

// sources are the files each runtime keeps in its directory of this
// package: the shim, the syntax checker and any helper the drivers run.
//
//go:embed python node
var sources embed.FS

// A Runtime describes one language runtime: everything the API, the UI,
// the syntax checker and the drivers need to know that differs from one
// runtime to the next. Adding a runtime is adding an entry to table and a
// directory of this package holding its shim.
type Runtime struct {
	Name      string         // canonical, what functions store: "python"
	Label     string         // for people: "Python 3"
	Spellings []string       // other names accepted for it: "python3", "node"
	Versioned *regexp.Regexp // and versioned ones ("python3.11", "nodejs20.x"); nil if none

	// A function's files.
	DefaultHandler string   // the handler when a function names none: "main.handler"
	Ext            string   // the handler's module file's extension: ".py"
	OtherExts      []string // other extensions that module file may have: ".mjs"
	Packages       bool     // dots in the handler's module are directories: "pkg.mod.handler" is pkg/mod.py

	// Finding the interpreter (FindInterpreters).
	Command string   // its command, looked up in PATH, and its name in images: "python3"
	Env     string   // the variable that names it instead: "NIMBUS_PYTHON"
	Probe   []string // arguments that make it print its real executable and version, one a line

	// Running the shim.
	Dir       string   // the runtime's directory in this package: "python"
	Shim      string   // the shim's file name there and in the installed shim directory: "bootstrap.py"
	ShimArgs  []string // interpreter arguments before the shim's path: "-I", "-S", "-B"
	MemoryArg string   // an argument that takes the function's memory in MB ("--max-old-space-size="); "" if none
	// Zygote is the file name of a worker that forks the runtime's workers
	// with the shim already imported (the sandbox driver's); "" if the
	// runtime has none.
	Zygote string

	// Check checks a function's sources before it is saved; nil if the
	// runtime has no checker.
	Check *SyntaxCheck

	// Images: what the docker and microVM drivers' images hold.
	Image Recipe

	// Entry is, for a runtime with no interpreter of its own, the
	// executable in the function's code that the worker runs ("bootstrap",
	// as Lambda's provided runtimes): it is the handler's module file
	// whatever the handler says, and the handler is only passed on to it
	// (_HANDLER). Such a runtime's worker is the Runtime API relay
	// (internal/runtimeapi), the server's own binary: it has no Command,
	// no shim and no zygote.
	Entry string
	// EntrySources are files from which a deploy builds the entry when the
	// code lacks it (a Go module's go.mod: internal/build/deps); code must
	// hold the entry or one of them.
	EntrySources []string

	// MicroVM guests.
	Agent string // the guest agent's file name, in driver/microvm/guest and the guest's /nimbus: "agent.py"
	// Snapshots: a guest may be cloned from a snapshot of a booted one
	// (its agent reseeds randomness and resets the clock); otherwise each
	// guest boots afresh.
	Snapshots bool
}

// SyntaxCheck is how CheckSyntax checks a runtime's sources: the
// interpreter runs the checker script, which reads the sources as JSON on
// stdin and prints a verdict.
type SyntaxCheck struct {
	Script string   // in the runtime's directory: "check.py"
	Args   []string // interpreter arguments before the script's source: "-I", "-B", "-c"
	Exts   []string // the files it checks, by extension: ".py"
	Names  []string // and by base name: "package.json"
}

// Recipe says what a runtime's images hold besides its interpreter's
// executable and the shared libraries it loads.
type Recipe struct {
	Collect Collector
	// DockerImage is the docker driver's image when none is configured
	// and none has been built locally: "python:3.12-slim".
	DockerImage string
}

// Collector is how an image gathers a runtime's interpreter.
type Collector int

const (
	// CollectBinary gathers the executable and its shared libraries.
	CollectBinary Collector = iota
	// CollectPython also gathers the standard library and the libraries
	// of its extension modules, as the interpreter reports them.
	CollectPython
	// CollectRelay gathers no interpreter, only the shared libraries the
	// server's own executable loads (none when it is static): drivers
	// mount the executable itself into the instance as the Runtime API
	// relay, so that it is always the server's own.
	CollectRelay
)

// table holds every runtime, in the order lists show them.
var table = []*Runtime{
	{
		Name:           Python,
		Label:          "Python 3",
		Spellings:      []string{"python3"},
		Versioned:      regexp.MustCompile(`^python3(\.(8|9|1[0-9]))?$`),
		DefaultHandler: "main.handler",
		Ext:            ".py",
		Packages:       true,
		Command:        "python3",
		Env:            EnvPython,
		Probe:          []string{"-I", "-c", "import sys; print(sys.executable); print('%d.%d.%d' % sys.version_info[:3])"},
		Dir:            "python",
		Shim:           "bootstrap.py",
		ShimArgs:       []string{"-I", "-S", "-B"}, // -S: no site-packages, no .pth (bootstrap.py says why)
		Zygote:         "zygote.py",
		Check:          &SyntaxCheck{Script: "check.py", Args: []string{"-I", "-B", "-c"}, Exts: []string{".py"}},
		Image:          Recipe{Collect: CollectPython, DockerImage: "python:3.12-slim"},
		Agent:          "agent.py",
		Snapshots:      true,
	},
	{
		Name:           NodeJS,
		Label:          "Node.js",
		Spellings:      []string{"node", "javascript"},
		Versioned:      regexp.MustCompile(`^(nodejs|node)(1[468]|2[0-9])?(\.x)?$`),
		DefaultHandler: "index.handler",
		Ext:            ".js",
		OtherExts:      []string{".mjs"},
		Command:        "node",
		Env:            EnvNode,
		Probe:          []string{"-e", "process.stdout.write(process.execPath + '\\n' + process.versions.node + '\\n')"},
		Dir:            "node",
		Shim:           "bootstrap.js",
		MemoryArg:      "--max-old-space-size=",
		Check: &SyntaxCheck{
			Script: "check.js",
			Args:   []string{"--expose-internals", "--experimental-vm-modules", "--no-warnings", "-e"},
			Exts:   []string{".js", ".cjs", ".mjs"},
			Names:  []string{"package.json"},
		},
		Image: Recipe{Collect: CollectBinary, DockerImage: "node:20-slim"},
		Agent: "agent.js",
	},
	{
		Name:  Provided,
		Label: "Custom runtime (bootstrap)",
		// "go": Go sources (go.mod), built into the bootstrap at deploy.
		Spellings:      []string{"provided.al2", "provided.al2023", "go", "go1.x"},
		DefaultHandler: "bootstrap",
		Entry:          "bootstrap",
		EntrySources:   []string{"go.mod"},
		// No public image: `nimbus images build` makes one from this host.
		Image: Recipe{Collect: CollectRelay},
	},
}

// All returns every runtime, in the order lists show them.
func All() []*Runtime { return append([]*Runtime(nil), table...) }

// Names returns every runtime's name, in table order.
func Names() []string {
	out := make([]string, len(table))
	for i, r := range table {
		out[i] = r.Name
	}
	return out
}

// Commands names the runtimes' interpreters for messages: "python3 or
// node".
func Commands() string {
	var b strings.Builder
	var withCommand []*Runtime
	for _, r := range table {
		if r.Command != "" {
			withCommand = append(withCommand, r)
		}
	}
	for i, r := range withCommand {
		switch {
		case i > 0 && i == len(withCommand)-1:
			b.WriteString(" or ")
		case i > 0:
			b.WriteString(", ")
		}
		b.WriteString(r.Command)
	}
	return b.String()
}

// Lookup returns the runtime named name (its canonical name).
func Lookup(name string) (*Runtime, bool) {
	for _, r := range table {
		if r.Name == name {
			return r, true
		}
	}
	return nil, false
}

// Find returns the runtime that s, any accepted spelling in any case,
// names.
func Find(s string) (*Runtime, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	for _, r := range table {
		if r.Accepts(s) {
			return r, true
		}
	}
	return nil, false
}

// Accepts reports whether s (lower case) is one of the runtime's spellings.
func (r *Runtime) Accepts(s string) bool {
	if s == r.Name {
		return true
	}
	for _, sp := range r.Spellings {
		if s == sp {
			return true
		}
	}
	return r.Versioned != nil && r.Versioned.MatchString(s)
}

// ModuleFiles are the files the handler's module may be: the first is the
// one a function given as a single "code" is written to. A relayed
// runtime's are its entry, whatever the handler, and the sources it may be
// built from. "main.handler"
// in Python is main.py; "lib/index.handler" in Node is lib/index.js or
// lib/index.mjs.
func (r *Runtime) ModuleFiles(handler string) []string {
	if r.Entry != "" {
		return append([]string{r.Entry}, r.EntrySources...)
	}
	i := strings.LastIndexByte(handler, '.')
	if i < 0 {
		return []string{handler} // not a handler: fn's validation says so
	}
	mod := handler[:i]
	if r.Packages {
		mod = strings.ReplaceAll(mod, ".", "/")
	}
	out := []string{mod + r.Ext}
	for _, ext := range r.OtherExts {
		out = append(out, mod+ext)
	}
	return out
}

// Relayed reports whether the runtime's worker is the Runtime API relay
// running the function's own executable (Entry), not an interpreter.
func (r *Runtime) Relayed() bool { return r.Entry != "" }

// ShimCommand is the argument list, interpreter first, that runs the shim at
// shim for a function of memoryMB.
func (r *Runtime) ShimCommand(interpreter, shim string, memoryMB int) []string {
	args := append([]string{interpreter}, r.ShimArgs...)
	if r.MemoryArg != "" {
		args = append(args, r.MemoryArg+strconv.Itoa(memoryMB))
	}
	return append(args, shim)
}

// checks reports whether the syntax checker reads the file at p.
func (c *SyntaxCheck) checks(p string) bool {
	for _, ext := range c.Exts {
		if path.Ext(p) == ext {
			return true
		}
	}
	for _, n := range c.Names {
		if path.Base(p) == n {
			return true
		}
	}
	return false
}

// source returns a file of the runtime's directory; the table's test
// makes sure every file named exists.
func (r *Runtime) source(name string) []byte {
	b, err := sources.ReadFile(r.Dir + "/" + name)
	if err != nil {
		panic("runtime " + r.Name + ": " + err.Error())
	}
	return b
}
