package deps

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"regexp"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// recipe changes whenever what a build does changes (its commands, its
// layout): layers of an older recipe are never reused.
const recipe = "1"

// The dependency files a function's code may hold, at its top.
const (
	requirementsTxt = "requirements.txt"
	pyprojectToml   = "pyproject.toml"
	packageJSON     = "package.json"
	packageLock     = "package-lock.json"
	npmShrinkwrap   = "npm-shrinkwrap.json"
)

// A Plan is one dependency build: what it installs and the key of the
// layer it makes.
type Plan struct {
	// Key names the layer: the hex SHA-256 of everything the build's
	// result depends on (recipe, platform, runtime, interpreter version,
	// dependency files, package sources, Scripts).
	Key     string
	Runtime string   // "python" or "nodejs"
	Scripts bool     // packages may run code as they install
	Files   []string // the dependency files it was made from, as named in the code

	tool  string            // "pip" or "npm"
	input map[string][]byte // files the build is given: a requirements file, or package.json and its lock
	lock  bool              // npm: a lock file came with the code (npm ci)
	// vendored: Go modules come from the code's vendor/ (-mod=vendor).
	vendored bool
}

// Plan reports whether the function code unpacked at srcDir declares
// dependencies for runtime rt (runtime.Python or runtime.NodeJS), and
// plans their build with install scripts allowed or not. Python's are
// requirements.txt, or else pyproject.toml's [project].dependencies (the
// project itself is not installed); Node's are package.json's
// dependencies, optionalDependencies and peerDependencies, locked by
// package-lock.json or npm-shrinkwrap.json when present (npm ci). A file
// declaring nothing (comments only, no dependencies) is as none: ok is
// false. Dependency files that cannot be read as their format wrap
// fn.ErrInvalid.
func (b *Builder) Plan(rt, srcDir string, scripts bool) (p *Plan, ok bool, err error) {
	if _, known := runtime.Lookup(rt); !known {
		return nil, false, fmt.Errorf("deps: runtime %q: %w", rt, fn.ErrInvalid)
	}
	root, err := os.OpenRoot(srcDir)
	if err != nil {
		return nil, false, fmt.Errorf("deps: %w", err)
	}
	defer root.Close()
	p = &Plan{Runtime: rt, Scripts: scripts, input: map[string][]byte{}}
	switch rt {
	case runtime.Python:
		ok, err = planPython(root, p)
	case runtime.NodeJS:
		ok, err = planNode(root, p)
	case runtime.Provided:
		ok, err = planGo(root, p)
	default:
		return nil, false, nil // a runtime without dependency builds
	}
	if err != nil || !ok {
		return nil, false, err
	}
	if p.tool == "go" {
		version, err := b.goVersion()
		if err != nil {
			return nil, false, err
		}
		p.Key = b.key(p, version)
		return p, true, nil
	}
	version := b.cfg.Interpreters.Version(rt)
	if b.cfg.Interpreters.Path(rt) == "" {
		return nil, false, fmt.Errorf("deps: %s declares dependencies, but this host has no %s interpreter to build them", strings.Join(p.Files, ", "), rt)
	}
	p.Key = b.key(p, version)
	return p, true, nil
}

// planPython plans pip's install: requirements.txt as it is, or a
// requirements file of pyproject.toml's dependencies.
func planPython(root *os.Root, p *Plan) (bool, error) {
	p.tool = "pip"
	req, found, err := readFile(root, requirementsTxt)
	if err != nil {
		return false, err
	}
	if found {
		if !declaresRequirements(req) {
			return false, nil
		}
		if !p.Scripts {
			if err := wheelsOnly(requirementsTxt, "line", req); err != nil {
				return false, err
			}
		}
		p.Files = []string{requirementsTxt}
		p.input[requirementsTxt] = req
		return true, nil
	}
	pyproject, found, err := readFile(root, pyprojectToml)
	if err != nil || !found {
		return false, err
	}
	var doc struct {
		Project struct {
			Dependencies *[]string `toml:"dependencies"`
			Dynamic      []string  `toml:"dynamic"`
		} `toml:"project"`
	}
	if _, err := toml.Decode(string(pyproject), &doc); err != nil {
		return false, fmt.Errorf("deps: %s: %v: %w", pyprojectToml, err, fn.ErrInvalid)
	}
	if slices.Contains(doc.Project.Dynamic, "dependencies") {
		return false, fmt.Errorf("deps: %s: [project].dependencies is dynamic (computed by the build backend): list them, or give a requirements.txt: %w", pyprojectToml, fn.ErrInvalid)
	}
	if doc.Project.Dependencies == nil || len(*doc.Project.Dependencies) == 0 {
		return false, nil
	}
	var reqs bytes.Buffer
	for _, d := range *doc.Project.Dependencies {
		d = strings.TrimSpace(d)
		// One requirement a line: an option ("--index-url …") or a second
		// line would let a dependency string steer pip.
		if d == "" || strings.HasPrefix(d, "-") || strings.ContainsAny(d, "\r\n") {
			return false, fmt.Errorf("deps: %s: dependency %q is not a requirement: %w", pyprojectToml, d, fn.ErrInvalid)
		}
		reqs.WriteString(d)
		reqs.WriteByte('\n')
	}
	if !p.Scripts {
		if err := wheelsOnly(pyprojectToml, "dependency", reqs.Bytes()); err != nil {
			return false, err
		}
	}
	p.Files = []string{pyprojectToml}
	p.input[requirementsTxt] = reqs.Bytes()
	return true, nil
}

// declaresRequirements reports whether a requirements file has a line
// other than blanks and comments.
func declaresRequirements(req []byte) bool {
	for line := range strings.SplitSeq(string(req), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			return true
		}
	}
	return false
}

// wheelsOptions are the options a requirements file may hold without
// install scripts: where packages come from, and which versions.
var wheelsOptions = map[string]bool{
	"-i": true, "--index-url": true, "--extra-index-url": true, "--no-index": true,
	"-f": true, "--find-links": true, "--trusted-host": true,
	"--pre": true, "--prefer-binary": true, "--only-binary": true, "--require-hashes": true,
}

// wheelsOnly refuses, for a build without install scripts, the
// requirements pip would build from source whatever --only-binary says,
// running the package's code: a direct reference to anything but a wheel
// (name @ URL, a URL, a path, git+…), an editable (-e), --no-binary (the
// file's options override the command line's), and another requirements
// or constraints file (-r, -c: a URL could hold any of these). Options
// other than the sources and versions pip may use are refused too.
func wheelsOnly(file, unit string, data []byte) error {
	refuse := func(n int, what string) error {
		return fmt.Errorf("deps: %s %s %d: %s: without install scripts only wheels install (pip would build this from source); turn scripts on to allow it: %w", file, unit, n, what, fn.ErrInvalid)
	}
	n, joined := 0, ""
	for i, line := range strings.Split(string(data), "\n") {
		// A line ending in a backslash continues on the next.
		if joined == "" {
			n = i + 1
		}
		line = strings.TrimSuffix(line, "\r")
		if l, ok := strings.CutSuffix(line, "\\"); ok {
			joined += l
			continue
		}
		line, joined = joined+line, ""
		if j := comment.FindStringIndex(line); j != nil {
			line = line[:j[0]]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "-") {
			name, _, _ := strings.Cut(strings.Fields(line)[0], "=")
			if !wheelsOptions[name] {
				return refuse(n, "option "+name)
			}
			continue
		}
		// A requirement, with per-requirement options: only hashes.
		req, opts, _ := strings.Cut(line, " -")
		if opts != "" {
			for _, o := range strings.Fields("-" + opts) {
				if strings.HasPrefix(o, "-") && !strings.HasPrefix(o, "--hash") {
					name, _, _ := strings.Cut(o, "=")
					return refuse(n, "option "+name)
				}
			}
		}
		ref := req
		if _, url, direct := strings.Cut(req, "@"); direct {
			ref = url
		} else if !strings.ContainsAny(req, "/\\") && !strings.Contains(req, "://") {
			continue // a name, extras, versions, markers
		}
		ref, _, _ = strings.Cut(strings.TrimSpace(ref), ";")
		if f := strings.Fields(ref); len(f) > 0 {
			ref = f[0]
		}
		ref, _, _ = strings.Cut(ref, "#")
		ref, _, _ = strings.Cut(ref, "?")
		if !strings.Contains(ref, "://") || strings.HasPrefix(ref, "git+") || !strings.HasSuffix(ref, ".whl") {
			return refuse(n, fmt.Sprintf("%q is not a wheel's URL", strings.TrimSpace(req)))
		}
	}
	return nil
}

// comment is pip's: a # at the start or after white space.
var comment = regexp.MustCompile(`(^|\s+)#.*$`)

// planNode plans npm's install of package.json, with its lock when the
// code has one.
func planNode(root *os.Root, p *Plan) (bool, error) {
	p.tool = "npm"
	pkg, found, err := readFile(root, packageJSON)
	if err != nil || !found {
		return false, err
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(pkg, &doc); err != nil || doc == nil {
		if err == nil {
			err = errors.New("not an object")
		}
		return false, fmt.Errorf("deps: %s: %v: %w", packageJSON, err, fn.ErrInvalid)
	}
	declares := false
	for _, field := range []string{"dependencies", "optionalDependencies", "peerDependencies"} {
		raw, ok := doc[field]
		if !ok {
			continue
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return false, fmt.Errorf("deps: %s: %s: %v: %w", packageJSON, field, err, fn.ErrInvalid)
		}
		declares = declares || len(m) > 0
	}
	if !declares {
		return false, nil
	}
	p.Files = []string{packageJSON}
	p.input[packageJSON] = pkg
	for _, name := range []string{npmShrinkwrap, packageLock} {
		lock, found, err := readFile(root, name)
		if err != nil {
			return false, err
		}
		if found {
			p.Files = append(p.Files, name)
			p.input[name] = lock
			p.lock = true
		}
	}
	return true, nil
}

// readFile reads the regular file name at the top of root; a symbolic
// link is followed only inside root.
func readFile(root *os.Root, name string) (data []byte, found bool, err error) {
	fi, err := root.Stat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("deps: %s: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, false, fmt.Errorf("deps: %s is not a regular file: %w", name, fn.ErrInvalid)
	}
	data, err = root.ReadFile(name)
	if err != nil {
		return nil, false, fmt.Errorf("deps: %s: %w", name, err)
	}
	return data, true, nil
}

// key hashes everything a build's result depends on, each part named and
// length-prefixed so that no two inputs hash alike.
func (b *Builder) key(p *Plan, version string) string {
	h := sha256.New()
	part := func(name, value string) {
		var n [8]byte
		for _, s := range []string{name, value} {
			binary.BigEndian.PutUint64(n[:], uint64(len(s)))
			h.Write(n[:])
			h.Write([]byte(s))
		}
	}
	part("recipe", recipe)
	part("platform", goruntime.GOOS+"/"+goruntime.GOARCH)
	part("runtime", p.Runtime)
	part("interpreter", version)
	switch p.tool {
	case "pip":
		part("pip index url", b.cfg.PipIndexURL)
		part("pip find links", b.cfg.PipFindLinks)
	case "npm":
		part("npm registry", b.cfg.NpmRegistry)
	case "go":
		part("go vendored", strconv.FormatBool(p.vendored))
	}
	part("scripts", strconv.FormatBool(p.Scripts))
	for _, name := range slices.Sorted(maps.Keys(p.input)) {
		part("file "+name, string(p.input[name]))
	}
	return hex.EncodeToString(h.Sum(nil))
}
