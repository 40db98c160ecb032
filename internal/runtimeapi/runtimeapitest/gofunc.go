package runtimeapitest

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/testenv"
)

// LambdaGo is the aws-lambda-go module Go functions of the tests use, as
// this repository's go.mod requires it (so that its own downloads put it
// in the module cache: preparing a test function needs no network).
const LambdaGo = "github.com/aws/aws-lambda-go"

// goFunctionMain is a handler written for AWS Lambda, unchanged: it uses
// lambda.Start and lambdacontext.
const goFunctionMain = `package main

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type event struct {
	Op   string ` + "`json:\"op\"`" + `
	Name string ` + "`json:\"name\"`" + `
}

type NotFoundError struct{ what string }

func (e *NotFoundError) Error() string { return "no " + e.what }

func handle(ctx context.Context, ev event) (map[string]any, error) {
	if ev.Op == "fail" {
		return nil, &NotFoundError{ev.Name}
	}
	lc, _ := lambdacontext.FromContext(ctx)
	deadline, ok := ctx.Deadline()
	fmt.Println("hello from go,", ev.Name)
	return map[string]any{
		"greeting":    "hello " + ev.Name,
		"requestId":   lc.AwsRequestID,
		"arn":         lc.InvokedFunctionArn,
		"function":    lambdacontext.FunctionName,
		"hasDeadline": ok,
		"leftMs":      time.Until(deadline).Milliseconds(),
	}, nil
}

func main() { lambda.Start(handle) }
`

// GoFunction returns the files of a Go function written for AWS Lambda
// (go.mod requiring aws-lambda-go, go.sum, main.go) with its modules
// vendored (vendor/), so that building it needs no network: the vendor
// directory is made from this host's module cache with GOPROXY=off.
func GoFunction(tb testing.TB) map[string][]byte {
	tb.Helper()
	gocmd, err := GoCommand()
	testenv.Require(tb, "the go toolchain", err)
	version, sums := lambdaGoRequirement(tb)
	dir := tb.TempDir()
	files := map[string]string{
		"go.mod":  "module example.com/hello\n\ngo 1.26\n\nrequire " + LambdaGo + " " + version + "\n",
		"go.sum":  sums,
		"main.go": goFunctionMain,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	modcache, err := exec.CommandContext(ctx, gocmd, "env", "GOMODCACHE").Output()
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, gocmd, "mod", "vendor")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOSUMDB=off", "GOTOOLCHAIN=local",
		"GOMODCACHE="+strings.TrimSpace(string(modcache)))
	if out, err := cmd.CombinedOutput(); err != nil {
		testenv.Require(tb, LambdaGo+" "+version+" in the module cache (go mod download in the repository)", err)
		tb.Fatalf("go mod vendor: %v: %s", err, out)
	}
	out := map[string][]byte{}
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// lambdaGoRequirement reads the version of aws-lambda-go this repository
// requires and its go.sum lines.
func lambdaGoRequirement(tb testing.TB) (version, sums string) {
	tb.Helper()
	_, self, _, _ := goruntime.Caller(0)
	root := filepath.Join(filepath.Dir(self), "..", "..", "..")
	f, err := os.Open(filepath.Join(root, "go.sum"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var b strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 3 && fields[0] == LambdaGo {
			version = strings.TrimSuffix(fields[1], "/go.mod")
			b.WriteString(sc.Text() + "\n")
		}
	}
	if version == "" {
		tb.Fatalf("%s is not in the repository's go.sum", LambdaGo)
	}
	return version, b.String()
}
