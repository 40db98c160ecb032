package cli

import (
	"bufio"
	"io"
	"regexp"
	"strings"
)

// Ignore is a list of gitignore patterns: what `nimbus deploy` leaves out
// of a code directory (.nimbusignore). It follows gitignore(5): blank
// lines and "#" comments are skipped, "!" re-includes, a trailing "/"
// matches directories only, a pattern with a "/" elsewhere is relative to
// the directory (else it matches at any depth), "*" and "?" stop at "/",
// "**" crosses directories, and the last pattern that matches wins. As in
// git, a file below an ignored directory cannot be re-included.
type Ignore struct {
	rules []ignoreRule
}

type ignoreRule struct {
	re      *regexp.Regexp
	negate  bool
	dirOnly bool
}

// ParseIgnore reads patterns, one a line.
func ParseIgnore(r io.Reader) (*Ignore, error) {
	ig := &Ignore{}
	return ig, ig.Read(r)
}

// Read adds the patterns of r, one a line, after those ig has.
func (ig *Ignore) Read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		ig.Add(sc.Text())
	}
	return sc.Err()
}

// Add adds one pattern line.
func (ig *Ignore) Add(line string) {
	line = strings.TrimRight(strings.TrimSuffix(line, "\r"), " ")
	if line == "" || strings.HasPrefix(line, "#") {
		return
	}
	var r ignoreRule
	if strings.HasPrefix(line, "!") {
		r.negate, line = true, line[1:]
	} else if strings.HasPrefix(line, `\`) {
		line = line[1:] // \# and \! are literal
	}
	if strings.HasSuffix(line, "/") {
		r.dirOnly, line = true, strings.TrimRight(line, "/")
	}
	anchored := strings.Contains(line, "/")
	line = strings.TrimPrefix(line, "/")
	if line == "" {
		return
	}
	var b strings.Builder
	b.WriteString("^")
	if !anchored {
		b.WriteString("(?:.*/)?")
	}
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case strings.HasPrefix(line[i:], "**/"):
			b.WriteString("(?:.*/)?")
			i += 2
		case strings.HasPrefix(line[i:], "**") && i+2 == len(line):
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		case c == '[':
			end := strings.IndexByte(line[i+1:], ']')
			if end < 0 {
				b.WriteString(`\[`)
				continue
			}
			class := line[i+1 : i+1+end]
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			b.WriteString("[" + strings.ReplaceAll(class, `\`, `\\`) + "]")
			i += end + 1
		case c == '\\' && i+1 < len(line):
			i++
			b.WriteString(regexp.QuoteMeta(line[i : i+1]))
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return // a pattern git would not match either
	}
	r.re = re
	ig.rules = append(ig.rules, r)
}

// Match reports whether the slash-separated path p, relative to the
// directory, is ignored; isDir says whether it is a directory. The caller
// does not descend into an ignored directory.
func (ig *Ignore) Match(p string, isDir bool) bool {
	if ig == nil {
		return false
	}
	ignored := false
	for _, r := range ig.rules {
		if r.dirOnly && !isDir {
			continue
		}
		if r.re.MatchString(p) {
			ignored = !r.negate
		}
	}
	return ignored
}
