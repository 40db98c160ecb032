package lambda_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/nimbusfaas/nimbus/internal/config"
	"github.com/nimbusfaas/nimbus/internal/server"
	"github.com/nimbusfaas/nimbus/internal/testenv"
)

// These tests drive a whole Nimbus (server.New: SQLite store, engine,
// sandbox driver with real python3 and node, the embedded bus and async
// queue, the API) on a loopback port with the official AWS SDK for Go v2
// Lambda client.

const (
	region  = "us-east-1"
	account = "000000000000"
)

// nimbus is a running server.
type nimbus struct {
	t   *testing.T
	url string
	key string
}

// serve starts a Nimbus for the test, with key as its API key ("" for
// none) and more settings as name, value pairs.
func serve(t *testing.T, key string, settings ...string) *nimbus {
	t.Helper()
	testenv.RequireRoot(t)
	for _, cmd := range []string{"python3", "node"} {
		_, err := exec.LookPath(cmd)
		testenv.Require(t, cmd, err)
	}
	ctx := t.Context()
	env := map[string]string{"NIMBUS_API_KEY": key, "NIMBUS_SANDBOX_WARM": "0", "NIMBUS_SANDBOX_PRESTART": "0"}
	for i := 0; i+1 < len(settings); i += 2 {
		env[settings[i]] = settings[i+1]
	}
	lookup := func(k string) (string, bool) {
		if v, ok := env[k]; ok {
			return v, v != ""
		}
		return os.LookupEnv(k)
	}
	cfg, err := config.Load(lookup, "", []string{"--port", "0", "--data-dir", t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(ctx, cfg, lookup, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	addr, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &nimbus{t: t, url: "http://" + addr.String(), key: key}
}

// client is an SDK client of the server signing with id and secret, or
// not signing at all when id is "". It does not retry: what the server
// answers first is what the test sees.
func (n *nimbus) client(id, secret string) *awslambda.Client {
	var creds aws.CredentialsProvider = aws.AnonymousCredentials{}
	if id != "" {
		creds = credentials.NewStaticCredentialsProvider(id, secret, "")
	}
	return awslambda.New(awslambda.Options{
		Region:           region,
		BaseEndpoint:     aws.String(n.url),
		Credentials:      creds,
		RetryMaxAttempts: 1,
	})
}

// signed is a client signing with the server's key ("nimbus"), or an
// unsigned one for a server without a key.
func (n *nimbus) signed() *awslambda.Client {
	if n.key == "" {
		return n.client("", "")
	}
	return n.client("nimbus", n.key)
}

// zipOf is a zip of files.
func zipOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, body)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Handlers the tests deploy.
const (
	pyEcho = `import json, os

def handler(event, context):
    print("echo", json.dumps(event))
    if isinstance(event, dict) and event.get("fail"):
        raise ValueError("asked to fail: " + str(event["fail"]))
    cc = context.client_context
    return {"event": event, "version": context.function_version, "answer": os.environ.get("ANSWER"),
            "custom": cc.custom if cc else None, "app": cc.client.app_title if cc and cc.client else None}
`
	nodeEcho = `exports.handler = async (event, context) => {
  console.log('echo', JSON.stringify(event));
  const cc = context.clientContext;
  return { event, custom: cc ? cc.custom : null, app: cc && cc.client ? cc.client.app_title : null };
};
`
)

// create deploys a Python echo function by CreateFunction.
func create(t *testing.T, c *awslambda.Client, name string, env map[string]string) *awslambda.CreateFunctionOutput {
	t.Helper()
	in := &awslambda.CreateFunctionInput{
		FunctionName: aws.String(name),
		Runtime:      types.Runtime("python3.12"),
		Role:         aws.String("arn:aws:iam::000000000000:role/ignored"),
		Handler:      aws.String("app.handler"),
		Code:         &types.FunctionCode{ZipFile: zipOf(t, map[string]string{"app.py": pyEcho})},
		Timeout:      aws.Int32(20),
		MemorySize:   aws.Int32(128),
	}
	if env != nil {
		in.Environment = &types.Environment{Variables: env}
	}
	out, err := c.CreateFunction(t.Context(), in)
	if err != nil {
		t.Fatalf("CreateFunction %s: %v", name, err)
	}
	return out
}

// invoke calls name by Invoke and decodes its payload into out.
func invoke(t *testing.T, c *awslambda.Client, in *awslambda.InvokeInput, out any) *awslambda.InvokeOutput {
	t.Helper()
	res, err := c.Invoke(t.Context(), in)
	if err != nil {
		t.Fatalf("Invoke %s: %v", aws.ToString(in.FunctionName), err)
	}
	if out != nil {
		if err := json.Unmarshal(res.Payload, out); err != nil {
			t.Fatalf("Invoke %s: payload %q: %v", aws.ToString(in.FunctionName), res.Payload, err)
		}
	}
	return res
}

// wantError fails t unless err is an error of type E (the SDK's class).
func wantError[E error](t *testing.T, what string, err error) E {
	t.Helper()
	var e E
	if !errors.As(err, &e) {
		t.Fatalf("%s: error %v (%T), want %T", what, err, err, e)
	}
	return e
}

// rawDo sends req to the server and returns the status and body.
func rawDo(t *testing.T, req *http.Request) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// eventually polls cond for up to 60 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readCloser(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }
