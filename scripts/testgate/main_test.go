package main

import (
	"strings"
	"testing"
)

func TestGate(t *testing.T) {
	stream := strings.Join([]string{
		`{"Action":"run","Package":"p","Test":"TestA"}`,
		`{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}`,
		`{"Action":"output","Package":"p","Test":"TestA","Output":"    a_test.go:9: quiet\n"}`,
		`{"Action":"pass","Package":"p","Test":"TestA"}`,
		`{"Action":"output","Package":"p","Test":"TestB","Output":"    b_test.go:3: boom\n"}`,
		`{"Action":"fail","Package":"p","Test":"TestB"}`,
		`{"Action":"output","Package":"p","Test":"TestC","Output":"    c_test.go:5: needs docker: no daemon\n"}`,
		`{"Action":"output","Package":"p","Test":"TestC","Output":"--- SKIP: TestC (0.00s)\n"}`,
		`{"Action":"skip","Package":"p","Test":"TestC"}`,
		`{"Action":"output","Package":"p","Output":"FAIL\tp\t0.1s\n"}`,
		`{"Action":"fail","Package":"p"}`,
		`{"Action":"output","Package":"r","Output":"?   \tr\t[no test files]\n"}`,
		`{"Action":"skip","Package":"r"}`,
		`# a build error, not JSON`,
		`{"ImportPath":"q","Action":"build-output","Output":"q/x.go:1: undefined: y\n"}`,
		`{"ImportPath":"q","Action":"build-fail"}`,
	}, "\n")
	var out strings.Builder
	res, err := gate(strings.NewReader(stream), &out)
	if err != nil {
		t.Fatal(err)
	}
	if res.passed != 1 || res.failed != 1 || !res.broken || len(res.skips) != 1 {
		t.Fatalf("result %+v", res)
	}
	if s := res.skips[0]; s.name != "p.TestC" || s.reason != "c_test.go:5: needs docker: no daemon" {
		t.Errorf("skip %+v", s)
	}
	got := out.String()
	for _, want := range []string{"b_test.go:3: boom", "FAIL\tp\t0.1s", "--- SKIP: p.TestC", "# a build error", "undefined: y"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "quiet") {
		t.Errorf("a passing test's output was printed:\n%s", got)
	}
	allow := patterns("p.TestC # docker is optional here\n\n# comment\n")
	if !allowed(allow, "p.TestC") || allowed(allow, "p.TestB") {
		t.Errorf("allow-list %q", allow)
	}
}
