// Command testgate reads `go test -json` on stdin and prints what a person
// needs from it: each package's result line, the whole output of every
// failed test, every skipped test with its reason, and a closing count.
// With CI set it also fails when a test skipped that is not on the
// allow-list (-allow, one pattern per line, "#" comments): under CI a
// missing dependency must fail, and a skip that is not meant must not
// read as a pass.
//
//	go test -json ./... | go run ./scripts/testgate -allow .ci/skips
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/nimbusfaas/nimbus/internal/testenv"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

type skip struct{ name, reason string }

func main() {
	allowFile := flag.String("allow", "", "file of skips allowed under CI: patterns of package.Test[/sub], path.Match syntax")
	flag.Parse()
	var allow []string
	if *allowFile != "" {
		b, err := os.ReadFile(*allowFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testgate:", err)
			os.Exit(2)
		}
		allow = patterns(string(b))
	}
	ci := testenv.CI()
	res, err := gate(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testgate:", err)
		os.Exit(2)
	}
	var unexpected []skip
	for _, s := range res.skips {
		if !allowed(allow, s.name) {
			unexpected = append(unexpected, s)
		}
	}
	fmt.Printf("tests: %d passed, %d failed, %d skipped\n", res.passed, res.failed, len(res.skips))
	if ci && len(unexpected) > 0 {
		fmt.Printf("testgate: %d skips are not on the allow-list %s (under CI a missing dependency must fail):\n", len(unexpected), *allowFile)
		for _, s := range unexpected {
			fmt.Printf("  %s: %s\n", s.name, s.reason)
		}
		os.Exit(1)
	}
	if res.failed > 0 || res.broken {
		os.Exit(1)
	}
}

type result struct {
	passed, failed int
	skips          []skip
	broken         bool // a package failed outside any test (build error, panic, timeout)
}

// gate copies what matters of the event stream in to out.
func gate(in io.Reader, out io.Writer) (result, error) {
	var res result
	outputs := map[string]*strings.Builder{} // package.Test -> its output so far
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil || e.Action == "" {
			fmt.Fprintf(out, "%s\n", line) // not an event: go test's own error text
			continue
		}
		name := e.Package + "." + e.Test
		switch {
		case e.Action == "build-output":
			fmt.Fprint(out, e.Output)
		case e.Action == "build-fail":
			res.broken = true
		case e.Test == "" && e.Action == "output":
			if o := e.Output; o != "PASS\n" && o != "FAIL\n" && !strings.HasPrefix(o, "=== ") {
				fmt.Fprint(out, o)
			}
		case e.Test == "" && e.Action == "fail":
			res.broken = true
		case e.Test == "":
			// A package's pass, or its skip when it has no tests: the
			// output line says which.
		case e.Action == "output":
			b := outputs[name]
			if b == nil {
				b = new(strings.Builder)
				outputs[name] = b
			}
			b.WriteString(e.Output)
		case e.Action == "pass":
			res.passed++
			delete(outputs, name)
		case e.Action == "fail":
			res.failed++
			if b := outputs[name]; b != nil {
				fmt.Fprint(out, b.String())
			}
			delete(outputs, name)
		case e.Action == "skip":
			res.skips = append(res.skips, skip{name, reason(outputs[name])})
			fmt.Fprintf(out, "--- SKIP: %s: %s\n", name, res.skips[len(res.skips)-1].reason)
			delete(outputs, name)
		}
	}
	return res, sc.Err()
}

// reason is the last line a skipped test logged: its t.Skip message.
func reason(b *strings.Builder) string {
	if b == nil {
		return "(no reason given)"
	}
	var last string
	for _, l := range strings.Split(b.String(), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "=== ") && !strings.HasPrefix(l, "--- SKIP") {
			last = l
		}
	}
	if last == "" {
		return "(no reason given)"
	}
	return last
}

func patterns(text string) []string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if i := strings.IndexByte(l, '#'); i >= 0 {
			l = l[:i]
		}
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func allowed(allow []string, name string) bool {
	for _, p := range allow {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}
