package fn

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// Defaults applied by Normalize when a field is zero.
const (
	DefaultDriver       = "sandbox"
	DefaultMaxInstances = 10
	MaxConcurrency      = 1000
	MaxKeepAliveMs      = 24 * 60 * 60 * 1000
	MaxNameLen          = 63
	MaxCodeBytes        = 5 << 20 // all files of a JSON "files" map together
	MaxFiles            = 100000  // files of one function's code, whatever the archive limits allow
	MaxLayers           = 5       // layers of one function (Lambda's)
	MaxHandlerLen       = 128     // Lambda's limit
	MaxPathLen          = 1024    // bytes in a file's whole path
	MaxPathElemLen      = 255     // bytes in one element of it (NAME_MAX)
	MaxEnvBytes         = 4 << 10 // Lambda's limit on all variables together (a secret reference counts its variable's and its secret's names)
	MinTimeoutMs        = 1
	MaxTimeoutMs        = 15 * 60 * 1000
	MinMemoryMB         = 16
	MaxMemoryMB         = 10240
)

// Function is a registered function: its code, its configuration and its
// version, which grows by one on every change.
type Function struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Runtime string `json:"runtime"`
	Handler string `json:"handler"`
	// Code, Files and ZipFile are the ways code comes in (one of them):
	// one source file, a map of files, or a zip or tar.gz archive
	// (base64 in JSON, as Lambda's ZipFile). The functions service stores
	// the code as one canonical zip and describes it in CodeInfo; Files is
	// then filled only to show small text code.
	Code    string `json:"code,omitempty"`
	Files   Files  `json:"files,omitempty"`
	ZipFile []byte `json:"zipFile,omitempty"`
	// Archive is code that comes as a stream (a request body): a zip or
	// tar.gz read once, in place of ZipFile. Never stored or shown.
	Archive io.Reader `json:"-"`
	// CodeInfo is the code stored: its hash, size and files.
	CodeInfo *CodeInfo `json:"codeInfo,omitempty"`
	// Layers are the ids (SHA-256) of uploaded layers the function
	// mounts under /opt/layers, in order, before its built dependencies.
	Layers []string `json:"layers,omitempty"`
	// Build says how dependencies are built; BuildStatus is how the last
	// build went.
	Build       *BuildSettings `json:"build,omitempty"`
	BuildStatus *BuildStatus   `json:"buildStatus,omitempty"`
	// Env are the plain variables, shown as they are. In JSON, "env"
	// holds them and the secret references together (see MarshalJSON).
	Env map[string]string `json:"env"`
	// SecretEnv maps a variable to the name of the secret whose value it
	// gets: {"secret": NAME} in "env". Only names are stored, published
	// and shown.
	SecretEnv map[string]string `json:"-"`
	// Secrets holds the revealed values of SecretEnv's variables, by
	// variable.
	//
	// SECRET VALUES. Filled only by the engine, on its own copy of the
	// function, right before it starts an instance; never stored, never
	// encoded (MarshalJSON leaves it out), never logged. Anything that
	// copies a Function to store, show or export it must not fill it.
	Secrets map[string]string `json:"-"`
	Timeout int               `json:"timeout"` // ms
	Memory  int               `json:"memory"`  // MB
	Driver  string            `json:"driver"`
	// MaxInstances bounds how many instances serve the function at once;
	// calls beyond it queue, then fail with ErrCapacity.
	MaxInstances int `json:"maxInstances"`
	// MinInstances are kept warm even when no call comes (0: the function
	// scales to zero when idle).
	MinInstances int `json:"minInstances"`
	// Concurrency is how many calls one instance serves at once (1). The
	// calls sharing an instance share its memory limit and its fate: a
	// timeout or crash of one ends them all.
	Concurrency int `json:"concurrency"`
	// KeepAlive is how long, in ms, an idle instance stays warm; 0 leaves it
	// to the server, whose default adapts to the function's idle times.
	KeepAlive int `json:"keepAlive"`
	// Network lets the function's instances reach the network. Off, an
	// instance has only its own loopback; see docs/isolation.md for what on
	// allows.
	Network bool `json:"network"`
	// URL, when enabled, lets HTTP requests to /fn/{name} invoke the
	// function (package trigger/url).
	URL *URLConfig `json:"url,omitempty"`
	// Async says how async calls are retried and where their outcome
	// goes (package trigger/async); Schedules invoke the function on a
	// timetable (package trigger/schedule).
	Async     *AsyncConfig `json:"async,omitempty"`
	Schedules []Schedule   `json:"schedules,omitempty"`
	// TestEvents are named events saved to invoke the function with
	// (the draft's only: see TestEvent).
	TestEvents []TestEvent `json:"testEvents,omitempty"`
	// Revision counts every change of the function ($LATEST, the draft).
	Revision int `json:"revision"`
	// Version is the number of a published version (a snapshot of the
	// draft that never changes); 0 for the draft itself, $LATEST.
	Version   int       `json:"version,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Defaults are the values Normalize fills in; they come from configuration.
type Defaults struct {
	TimeoutMs int
	MemoryMB  int
}

var (
	nameRE    = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	envKeyRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	handlerRE = regexp.MustCompile(`^[A-Za-z0-9_./-]+\.[A-Za-z_$][A-Za-z0-9_$]*$`)
	// entryHandlerRE is a handler of a runtime that runs an executable
	// (runtime.Runtime.Entry): any name the executable may read.
	entryHandlerRE = regexp.MustCompile(`^[A-Za-z0-9_.:/$-]+$`)
)

// CanonicalRuntime maps the spellings users write (python3.11, nodejs20.x,
// node) to the name of a runtime of the runtime table. Unknown spellings
// are rejected.
func CanonicalRuntime(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if r, ok := runtime.Find(s); ok {
		return r.Name, nil
	}
	if s == "" {
		return "", Invalid("runtime", "is required ("+runtimeChoices()+")")
	}
	return "", Invalid("runtime", fmt.Sprintf("unknown runtime %q (use %s)", s, runtimeChoices()))
}

// runtimeChoices lists the runtime table's names for an error message,
// quoted, the last after "or".
func runtimeChoices() string {
	names := runtime.Names()
	for i, n := range names {
		names[i] = fmt.Sprintf("%q", n)
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// driverAliases maps the other names users give drivers to the names the
// drivers are registered by.
var driverAliases = map[string]string{
	"firecracker": "microvm",
}

// CanonicalDriver is the name of the driver users call s: lower case,
// aliases resolved, DefaultDriver when s is empty. Normalize stores it, so
// pools, metrics and the API all see one name per driver. Whether such a
// driver exists is the engine's to say.
func CanonicalDriver(s string) string {
	s = strings.ToLower(s)
	if s == "" {
		return DefaultDriver
	}
	if name, ok := driverAliases[s]; ok {
		return name
	}
	return s
}

// Normalize validates f, canonicalises its runtime and fills defaults. It
// returns a FieldError (ErrInvalid) naming the first bad field.
func (f *Function) Normalize(d Defaults) error {
	f.Name = strings.TrimSpace(f.Name)
	switch {
	case f.Name == "":
		return Invalid("name", "is required")
	case len(f.Name) > MaxNameLen:
		return Invalid("name", fmt.Sprintf("must be at most %d characters", MaxNameLen))
	case !nameRE.MatchString(f.Name):
		return Invalid("name", "must be lowercase letters, digits and '-', starting and ending with a letter or digit")
	case LooksLikeID(f.Name):
		return Invalid("name", fmt.Sprintf("must not look like a function id (%d hexadecimal digits): calls by id would be ambiguous", IDLen))
	}
	rt, err := CanonicalRuntime(f.Runtime)
	if err != nil {
		return err
	}
	f.Runtime = rt
	r, _ := runtime.Lookup(rt)
	if f.Handler == "" {
		f.Handler = r.DefaultHandler
	}
	if len(f.Handler) > MaxHandlerLen {
		return Invalid("handler", fmt.Sprintf("must be at most %d characters", MaxHandlerLen))
	}
	switch {
	case r.Relayed():
		// Only passed on to the function's executable (_HANDLER), as
		// Lambda's provided runtimes do: "bootstrap", "hello.handler".
		if !entryHandlerRE.MatchString(f.Handler) {
			return Invalid("handler", `must be letters, digits and "_.:/$-", e.g. "`+r.DefaultHandler+`"`)
		}
	case !handlerRE.MatchString(f.Handler) || strings.Contains(f.Handler, "..") || strings.HasPrefix(f.Handler, "/"):
		return Invalid("handler", `must look like "module.function", e.g. "`+r.DefaultHandler+`"`)
	}
	if err := f.normalizeFiles(); err != nil {
		return err
	}
	if err := f.normalizeLayers(); err != nil {
		return err
	}
	if f.Env == nil {
		f.Env = map[string]string{}
	}
	size, err := f.normalizeSecretEnv()
	if err != nil {
		return err
	}
	for k, v := range f.Env {
		if err := checkEnvName(k); err != nil {
			return err
		}
		if strings.ContainsRune(v, 0) {
			return Invalid("env", fmt.Sprintf("value of %q contains a NUL byte", k))
		}
		size += len(k) + len(v)
	}
	if size > MaxEnvBytes {
		return Invalid("env", fmt.Sprintf("variables total %d bytes (a secret's counts its name), more than %d", size, MaxEnvBytes))
	}
	if f.Timeout == 0 {
		f.Timeout = d.TimeoutMs
	}
	if f.Timeout < MinTimeoutMs || f.Timeout > MaxTimeoutMs {
		return Invalid("timeout", fmt.Sprintf("must be between %d and %d ms", MinTimeoutMs, MaxTimeoutMs))
	}
	if f.Memory == 0 {
		f.Memory = d.MemoryMB
	}
	if f.Memory < MinMemoryMB || f.Memory > MaxMemoryMB {
		return Invalid("memory", fmt.Sprintf("must be between %d and %d MB", MinMemoryMB, MaxMemoryMB))
	}
	f.Driver = CanonicalDriver(f.Driver)
	if f.MaxInstances == 0 {
		f.MaxInstances = DefaultMaxInstances
	}
	if f.MaxInstances < 1 || f.MaxInstances > 1000 {
		return Invalid("maxInstances", "must be between 1 and 1000")
	}
	if f.MinInstances < 0 || f.MinInstances > f.MaxInstances {
		return Invalid("minInstances", fmt.Sprintf("must be between 0 and maxInstances (%d)", f.MaxInstances))
	}
	if f.Concurrency == 0 {
		f.Concurrency = 1
	}
	if f.Concurrency < 1 || f.Concurrency > MaxConcurrency {
		return Invalid("concurrency", fmt.Sprintf("must be between 1 and %d", MaxConcurrency))
	}
	if f.KeepAlive < 0 || f.KeepAlive > MaxKeepAliveMs {
		return Invalid("keepAlive", fmt.Sprintf("must be between 0 (adaptive) and %d ms", MaxKeepAliveMs))
	}
	if f.URL != nil {
		// A copy: f may be a copy of a function others read (the cache's),
		// sharing its URL settings.
		u := f.URL.clone()
		if err := u.normalize(); err != nil {
			return err
		}
		f.URL = u
	}
	if f.Async != nil {
		a := f.Async.clone()
		if err := a.normalize(); err != nil {
			return err
		}
		f.Async = a
	}
	if f.Schedules != nil {
		s, err := normalizeSchedules(f.Schedules)
		if err != nil {
			return err
		}
		f.Schedules = s
	}
	te, err := normalizeTestEvents(f.TestEvents)
	if err != nil {
		return err
	}
	f.TestEvents = te
	return nil
}

// normalizeFiles folds Code into Files (as the handler's module file) and
// checks every path: relative, clean, no escape from the code directory.
// Code comes as Code, Files or ZipFile; without any, the stored code
// (CodeInfo) stays, and its manifest is checked as sent code is: nothing
// stored is trusted.
func (f *Function) normalizeFiles() error {
	given := 0
	for _, set := range []bool{f.Code != "", len(f.Files) > 0, len(f.ZipFile) > 0 || f.Archive != nil} {
		if set {
			given++
		}
	}
	switch {
	case given > 1:
		return Invalid("code", `give one of "code", "files" or "zipFile"`)
	case given == 0 && f.CodeInfo == nil:
		return Invalid("code", "is required")
	case len(f.ZipFile) > 0 || f.Archive != nil:
		return nil // unpacked and checked by the functions service
	case given == 0:
		return f.checkCodeInfo()
	}
	if f.Code != "" {
		f.Files = Files{f.ModuleFile(): f.Code}
		f.Code = ""
	}
	if len(f.Files) > MaxFiles {
		return Invalid("files", fmt.Sprintf("at most %d files", MaxFiles))
	}
	total := 0
	for p, c := range f.Files {
		if err := CheckPath(p); err != nil {
			return err
		}
		total += len(c)
	}
	// A file whose path is another's directory can never be written.
	for _, p := range f.FileNames() {
		for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
			if f.hasFile(dir) {
				return Invalid("files", fmt.Sprintf("%q is a file and the directory of %q", dir, p))
			}
		}
	}
	if total > MaxCodeBytes {
		return Invalid("code", fmt.Sprintf("files total %d bytes, more than %d: send an archive instead", total, MaxCodeBytes))
	}
	if !slices.ContainsFunc(f.moduleFiles(), f.hasFile) {
		return Invalid("handler", fmt.Sprintf("module file %q is not among the files", f.ModuleFile()))
	}
	return nil
}

// checkCodeInfo checks the manifest of stored code: a hash, sane paths,
// and the handler's module among the files.
func (f *Function) checkCodeInfo() error {
	c := f.CodeInfo
	if !IsSHA256(c.SHA256) {
		return Invalid("codeInfo", "has no valid sha256")
	}
	if len(c.Files) > MaxFiles {
		return Invalid("codeInfo", fmt.Sprintf("lists %d files, more than %d", len(c.Files), MaxFiles))
	}
	for i, fi := range c.Files {
		if err := CheckPath(fi.Path); err != nil {
			return err
		}
		if i > 0 && c.Files[i-1].Path >= fi.Path {
			return Invalid("codeInfo", "files are not sorted by path")
		}
	}
	if !slices.ContainsFunc(f.moduleFiles(), c.Has) {
		return Invalid("handler", fmt.Sprintf("module file %q is not among the files", f.ModuleFile()))
	}
	return nil
}

// IsSHA256 reports whether s is a SHA-256 in lower-case hex.
func IsSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// normalizeLayers checks the layer ids.
func (f *Function) normalizeLayers() error {
	if len(f.Layers) > MaxLayers {
		return Invalid("layers", fmt.Sprintf("at most %d layers", MaxLayers))
	}
	for i, l := range f.Layers {
		if !IsSHA256(l) {
			return Invalid("layers", fmt.Sprintf("%q is not a layer id (the sha256 POST /api/layers answered)", l))
		}
		if slices.Contains(f.Layers[:i], l) {
			return Invalid("layers", fmt.Sprintf("%q is listed twice", l))
		}
	}
	return nil
}

// CheckPath accepts a clean, relative, valid UTF-8 path that stays in the
// code directory and that every file system takes.
func CheckPath(p string) error {
	if why := PathProblem(p); why != "" {
		return Invalid("files", fmt.Sprintf("%.80q %s", p, why))
	}
	return nil
}

// PathProblem says what is wrong with p as the path of a file of a
// function's code, or "": the one rule for files maps, archives and
// stored manifests.
func PathProblem(p string) string {
	switch {
	case p == "":
		return "has an empty name"
	case strings.HasPrefix(p, "/"):
		return "has an absolute path"
	case strings.ContainsAny(p, "\\\x00"):
		return "has a backslash or a NUL byte in its name"
	case !utf8.ValidString(p):
		return "has a name that is not valid UTF-8"
	case len(p) > MaxPathLen:
		return fmt.Sprintf("has a path of %d bytes, more than %d", len(p), MaxPathLen)
	case path.Clean(p) != p || p == "." || p == ".." || strings.HasPrefix(p, "../"):
		return "is not a clean relative path (no \".\", \"..\" or empty element)"
	}
	for elem := range strings.SplitSeq(p, "/") {
		if len(elem) > MaxPathElemLen {
			return fmt.Sprintf("has a name of %d bytes, more than %d", len(elem), MaxPathElemLen)
		}
	}
	return ""
}

func (f *Function) hasFile(p string) bool { _, ok := f.Files[p]; return ok }

// ModuleFile is the source file the handler lives in, as its runtime's
// descriptor says: "main.handler" in Python is main.py, "lib/index.handler"
// in Node is lib/index.js.
func (f *Function) ModuleFile() string {
	if mods := f.moduleFiles(); len(mods) > 0 {
		return mods[0]
	}
	return f.Handler
}

// ModuleFiles are the files the handler's module may be, ModuleFile
// first; none if the runtime is unknown.
func (f *Function) ModuleFiles() []string { return f.moduleFiles() }

func (f *Function) moduleFiles() []string {
	r, ok := runtime.Lookup(f.Runtime)
	if !ok {
		return nil
	}
	return r.ModuleFiles(f.Handler)
}

// FileNames returns the function's file paths, sorted.
func (f *Function) FileNames() []string {
	names := make([]string, 0, len(f.Files))
	for p := range f.Files {
		names = append(names, p)
	}
	sort.Strings(names)
	return names
}

// reservedEnv reports whether k is a variable Nimbus sets itself.
func reservedEnv(k string) bool {
	switch k {
	case "PATH", "HOME", "LANG", "TZ", "PYTHONPATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "NODE_PATH", "NODE_OPTIONS", "LD_PRELOAD", "LD_LIBRARY_PATH":
		return true
	}
	return strings.HasPrefix(k, "NIMBUS_") || strings.HasPrefix(k, "AWS_LAMBDA_") || strings.HasPrefix(k, "LAMBDA_")
}

// SameConfig reports whether a and b would run identically and are called
// the same way: an update that changes nothing keeps the version. The URL
// settings do not change what runs, but they are part of the function as
// stored, and an update that left them out would not be stored at all;
// so are the saved test events.
func SameConfig(a, b *Function) bool {
	if a.Name != b.Name || a.Runtime != b.Runtime || a.Handler != b.Handler || a.Timeout != b.Timeout ||
		a.Memory != b.Memory || a.Driver != b.Driver || a.MaxInstances != b.MaxInstances || a.Network != b.Network ||
		a.MinInstances != b.MinInstances || a.Concurrency != b.Concurrency || a.KeepAlive != b.KeepAlive ||
		len(a.Files) != len(b.Files) || len(a.Env) != len(b.Env) || !maps.Equal(a.SecretEnv, b.SecretEnv) ||
		a.CodeSHA256() != b.CodeSHA256() || !slices.Equal(a.Layers, b.Layers) || a.Scripts() != b.Scripts() ||
		!equalURL(a.URL, b.URL) || !sameJSON(a.Async, b.Async) || !sameJSON(a.Schedules, b.Schedules) ||
		!sameJSON(a.TestEvents, b.TestEvents) {
		return false
	}
	for k, v := range a.Files {
		if w, ok := b.Files[k]; !ok || w != v {
			return false
		}
	}
	for k, v := range a.Env {
		if w, ok := b.Env[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// CodeSHA256 is the hash of the stored code, "" before it is stored.
func (f *Function) CodeSHA256() string {
	if f.CodeInfo == nil {
		return ""
	}
	return f.CodeInfo.SHA256
}

// Scripts reports whether the function's dependency builds may run
// install scripts.
func (f *Function) Scripts() bool { return f.Build != nil && f.Build.Scripts }

// sameJSON reports whether a and b encode the same, for settings that
// are compared whole.
func sameJSON(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}
