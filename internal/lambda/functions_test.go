package lambda_test

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// TestOperationsUnsigned runs every operation on a server without a
// key, by a client that does not sign.
func TestOperationsUnsigned(t *testing.T) {
	n := serve(t, "")
	allOperations(t, n, n.client("", ""))
}

// TestOperationsSigned runs every operation on a server with a key, by
// a client that signs with it.
func TestOperationsSigned(t *testing.T) {
	n := serve(t, "s3cret-key")
	allOperations(t, n, n.signed())
}

// allOperations drives every operation through c, each as a subtest.
func allOperations(t *testing.T, n *nimbus, c *awslambda.Client) {
	t.Run("functions", func(t *testing.T) { functionLifecycle(t, n, c) })
	t.Run("runtimes", func(t *testing.T) { runtimes(t, c) })
	t.Run("versions and aliases", func(t *testing.T) { versionsAndAliases(t, c) })
	t.Run("invoke", func(t *testing.T) { invocations(t, n, c) })
	t.Run("url and event invoke configs", func(t *testing.T) { urlAndEventConfigs(t, n, c) })
	t.Run("account settings", func(t *testing.T) {
		out, err := c.GetAccountSettings(t.Context(), &awslambda.GetAccountSettingsInput{})
		if err != nil {
			t.Fatal(err)
		}
		if out.AccountUsage == nil || out.AccountUsage.FunctionCount < 1 || out.AccountLimit == nil || out.AccountLimit.CodeSizeZipped <= 0 {
			t.Errorf("account settings %+v %+v", out.AccountUsage, out.AccountLimit)
		}
	})
}

// functionLifecycle: create, read (with the code's download), list in
// pages, change configuration and code, delete.
func functionLifecycle(t *testing.T, n *nimbus, c *awslambda.Client) {
	ctx := t.Context()
	out := create(t, c, "life", map[string]string{"ANSWER": "one"})
	if aws.ToString(out.FunctionArn) != "arn:aws:lambda:"+region+":"+account+":function:life" || aws.ToString(out.Version) != "$LATEST" ||
		aws.ToInt32(out.Timeout) != 20 || aws.ToInt32(out.MemorySize) != 128 || aws.ToString(out.Handler) != "app.handler" ||
		out.State != types.StateActive || out.Environment == nil || out.Environment.Variables["ANSWER"] != "one" || out.CodeSize <= 0 {
		t.Errorf("CreateFunction answered %+v", out)
	}
	_, err := c.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String("life"), Runtime: types.RuntimePython312,
		Role: aws.String("r"), Handler: aws.String("app.handler"), Code: &types.FunctionCode{ZipFile: zipOf(t, map[string]string{"app.py": pyEcho})}})
	wantError[*types.ResourceConflictException](t, "CreateFunction of a taken name", err)

	got, err := c.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("life")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(got.Configuration.CodeSha256) != aws.ToString(out.CodeSha256) || aws.ToString(got.Configuration.RevisionId) != aws.ToString(out.RevisionId) {
		t.Errorf("GetFunction %+v, created %+v", got.Configuration, out)
	}
	// Code.Location downloads the code as stored, with no credentials
	// but what the link carries.
	resp, err := http.Get(aws.ToString(got.Code.Location))
	if err != nil {
		t.Fatal(err)
	}
	zipped, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Code.Location %s: %d %s", aws.ToString(got.Code.Location), resp.StatusCode, zipped)
	}
	zr, err := zip.NewReader(bytes.NewReader(zipped), int64(len(zipped)))
	if err != nil || len(zr.File) != 1 || zr.File[0].Name != "app.py" {
		t.Fatalf("Code.Location gave %d bytes: %v", len(zipped), err)
	}
	if n.key != "" && !strings.Contains(aws.ToString(got.Code.Location), "X-Amz-Signature=") {
		t.Errorf("Code.Location %s is not presigned", aws.ToString(got.Code.Location))
	}

	cfg, err := c.GetFunctionConfiguration(ctx, &awslambda.GetFunctionConfigurationInput{FunctionName: aws.String("life")})
	if err != nil || aws.ToString(cfg.CodeSha256) != aws.ToString(out.CodeSha256) {
		t.Fatalf("GetFunctionConfiguration: %+v, %v", cfg, err)
	}

	for _, name := range []string{"list-a", "list-b", "list-c"} {
		create(t, c, name, nil)
	}
	var names []string
	var pages int
	for p := awslambda.NewListFunctionsPaginator(c, &awslambda.ListFunctionsInput{MaxItems: aws.Int32(2)}); p.HasMorePages(); pages++ {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Functions) > 2 {
			t.Errorf("a page of %d functions, MaxItems 2", len(page.Functions))
		}
		for _, f := range page.Functions {
			names = append(names, aws.ToString(f.FunctionName))
		}
	}
	if strings.Join(names, ",") != "life,list-a,list-b,list-c" || pages != 2 {
		t.Errorf("ListFunctions in %d pages: %v", pages, names)
	}

	up, err := c.UpdateFunctionConfiguration(ctx, &awslambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("life"), Timeout: aws.Int32(7), MemorySize: aws.Int32(256),
		Environment: &types.Environment{Variables: map[string]string{"ANSWER": "two"}}, RevisionId: out.RevisionId,
	})
	if err != nil || aws.ToInt32(up.Timeout) != 7 || aws.ToInt32(up.MemorySize) != 256 || up.Environment.Variables["ANSWER"] != "two" {
		t.Fatalf("UpdateFunctionConfiguration: %+v, %v", up, err)
	}
	_, err = c.UpdateFunctionConfiguration(ctx, &awslambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("life"), Timeout: aws.Int32(8), RevisionId: out.RevisionId, // stale now
	})
	wantError[*types.PreconditionFailedException](t, "UpdateFunctionConfiguration with a stale RevisionId", err)
	var ans struct{ Answer string }
	invoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String("life")}, &ans)
	if ans.Answer != "two" {
		t.Errorf("after UpdateFunctionConfiguration the function says %q", ans.Answer)
	}

	if _, err := c.PublishVersion(ctx, &awslambda.PublishVersionInput{FunctionName: aws.String("life")}); err != nil {
		t.Fatal(err)
	}
	code, err := c.UpdateFunctionCode(ctx, &awslambda.UpdateFunctionCodeInput{FunctionName: aws.String("life"),
		ZipFile: zipOf(t, map[string]string{"app.py": "def handler(event, context):\n    return {'answer': 'new code'}\n"})})
	if err != nil || aws.ToString(code.CodeSha256) == aws.ToString(out.CodeSha256) {
		t.Fatalf("UpdateFunctionCode: %+v, %v", code, err)
	}
	invoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String("life")}, &ans)
	if ans.Answer != "new code" {
		t.Errorf("after UpdateFunctionCode the function says %q", ans.Answer)
	}
	// A version's Code.Location is that version's code.
	for q, want := range map[string]string{"1": "asked to fail", "$LATEST": "new code"} {
		got, err := c.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("life"), Qualifier: aws.String(q)})
		if err != nil {
			t.Fatal(err)
		}
		if src := appSource(t, aws.ToString(got.Code.Location)); !strings.Contains(src, want) {
			t.Errorf("GetFunction %s: Code.Location has app.py %q, want it to say %q", q, src, want)
		}
	}
	_, err = c.UpdateFunctionCode(ctx, &awslambda.UpdateFunctionCodeInput{FunctionName: aws.String("life"), DryRun: true,
		ZipFile: zipOf(t, map[string]string{"app.py": "def handler(event, context):\n    return {'answer': 'dry'}\n"})})
	wantError[*types.InvalidParameterValueException](t, "UpdateFunctionCode with DryRun", err)
	invoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String("life")}, &ans)
	if ans.Answer != "new code" {
		t.Errorf("after a refused DryRun the function says %q", ans.Answer)
	}
	_, err = c.UpdateFunctionCode(ctx, &awslambda.UpdateFunctionCodeInput{FunctionName: aws.String("life"), S3Bucket: aws.String("b"), S3Key: aws.String("k")})
	wantError[*types.InvalidParameterValueException](t, "UpdateFunctionCode from S3", err)

	if _, err := c.DeleteFunction(ctx, &awslambda.DeleteFunctionInput{FunctionName: aws.String("life")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("life")})
	e := wantError[*types.ResourceNotFoundException](t, "GetFunction of a deleted function", err)
	if !strings.Contains(e.ErrorMessage(), "function:life") {
		t.Errorf("not found message %q does not name the function", e.ErrorMessage())
	}
	_, err = c.DeleteFunction(ctx, &awslambda.DeleteFunctionInput{FunctionName: aws.String("life")})
	wantError[*types.ResourceNotFoundException](t, "DeleteFunction of a deleted function", err)
}

// runtimes: Lambda's spellings of Python and Node are taken; provided.*
// is refused as not available (until the Runtime API comes); others as
// unsupported.
func runtimes(t *testing.T, c *awslambda.Client) {
	ctx := t.Context()
	out, err := c.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String("node-fn"), Runtime: types.RuntimeNodejs20x,
		Role: aws.String("r"), Handler: aws.String("index.handler"), Code: &types.FunctionCode{ZipFile: zipOf(t, map[string]string{"index.js": nodeEcho})}})
	if err != nil || out.Runtime != "nodejs" {
		t.Fatalf("CreateFunction nodejs20.x: %+v, %v", out, err)
	}
	var got struct{ Event map[string]int }
	invoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String("node-fn"), Payload: []byte(`{"n":3}`)}, &got)
	if got.Event["n"] != 3 {
		t.Errorf("the Node function answered %+v", got)
	}
	// A custom runtime: the code's own bootstrap, through the Runtime API.
	out, err = c.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String("custom-fn"), Runtime: "provided.al2023",
		Role: aws.String("r"), Handler: aws.String("x.handler"), Code: &types.FunctionCode{ZipFile: zipOf(t, map[string]string{"bootstrap": "#!/bin/sh\n"})}})
	if err != nil || out.Runtime != "provided" {
		t.Errorf("CreateFunction provided.al2023: %+v, %v", out, err)
	}
	for rt, want := range map[types.Runtime]string{"ruby3.3": "not supported", "java21": "not supported"} {
		_, err := c.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String("rt-fn"), Runtime: rt,
			Role: aws.String("r"), Handler: aws.String("x.handler"), Code: &types.FunctionCode{ZipFile: zipOf(t, map[string]string{"bootstrap": "#!/bin/sh\n"})}})
		if e := wantError[*types.InvalidParameterValueException](t, "CreateFunction "+string(rt), err); !strings.Contains(e.ErrorMessage(), want) {
			t.Errorf("CreateFunction %s: %q, want it to say %q", rt, e.ErrorMessage(), want)
		}
	}
}

// nimbusFunction is a function as GET /api/functions/{id} shows it.
type nimbusFunction struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Runtime  string            `json:"runtime"`
	Handler  string            `json:"handler"`
	Env      map[string]string `json:"env"`
	Timeout  int               `json:"timeout"`
	Memory   int               `json:"memory"`
	Revision int               `json:"revision"`
	Layers   []string          `json:"layers"`
	CodeInfo struct {
		SHA256 string `json:"sha256"`
		Size   int64  `json:"size"`
	} `json:"codeInfo"`
}

// api calls the Nimbus API with the server's key.
func (n *nimbus) api(method, path string, body any, out any) int {
	n.t.Helper()
	var rd io.Reader
	if body != nil {
		if b, ok := body.([]byte); ok {
			rd = bytes.NewReader(b)
		} else {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
	}
	req, _ := http.NewRequest(method, n.url+path, rd)
	if n.key != "" {
		req.Header.Set("Authorization", "Bearer "+n.key)
	}
	if _, ok := body.([]byte); ok {
		req.Header.Set("Content-Type", "application/zip")
	} else if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	st, _, b := rawDo(n.t, req)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			n.t.Fatalf("%s %s: %d %s: %v", method, path, st, b, err)
		}
	}
	return st
}

// TestOneFunctionTwoAPIs: a function made through the Lambda API is the
// same function through the Nimbus API, and a change through either is
// seen through the other.
func TestOneFunctionTwoAPIs(t *testing.T) {
	n := serve(t, "k3y")
	c := n.signed()
	ctx := t.Context()
	// A layer uploaded through the Nimbus API, named by its ARN.
	var layer struct{ ID string }
	if st := n.api("POST", "/api/layers", zipOf(t, map[string]string{"python/shared.py": "WORD = 'from the layer'\n"}), &layer); st != http.StatusCreated {
		t.Fatalf("POST /api/layers: %d", st)
	}
	layerARN := "arn:aws:lambda:" + region + ":" + account + ":layer:" + layer.ID + ":1"
	out, err := c.CreateFunction(ctx, &awslambda.CreateFunctionInput{
		FunctionName: aws.String("both"), Runtime: types.RuntimePython311, Role: aws.String("r"), Handler: aws.String("app.handler"),
		Code:    &types.FunctionCode{ZipFile: zipOf(t, map[string]string{"app.py": "import shared\n\ndef handler(event, context):\n    return shared.WORD\n"})},
		Timeout: aws.Int32(9), MemorySize: aws.Int32(192), Layers: []string{layerARN},
		Environment: &types.Environment{Variables: map[string]string{"MODE": "lambda"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var f nimbusFunction
	if st := n.api("GET", "/api/functions/both", nil, &f); st != http.StatusOK {
		t.Fatalf("GET /api/functions/both: %d", st)
	}
	sum, _ := hex.DecodeString(f.CodeInfo.SHA256)
	if f.Runtime != string(out.Runtime) || f.Runtime != "python" || f.Handler != aws.ToString(out.Handler) || f.Timeout != 9000 ||
		f.Memory != 192 || f.Env["MODE"] != "lambda" || len(f.Layers) != 1 || f.Layers[0] != layer.ID ||
		base64.StdEncoding.EncodeToString(sum) != aws.ToString(out.CodeSha256) || f.CodeInfo.Size != out.CodeSize {
		t.Errorf("through the Nimbus API %+v; through Lambda's %+v", f, out)
	}
	if len(out.Layers) != 1 || aws.ToString(out.Layers[0].Arn) != layerARN {
		t.Errorf("Layers %+v, want %s", out.Layers, layerARN)
	}
	var word string
	invoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String("both")}, &word)
	if word != "from the layer" {
		t.Errorf("the function read %q from its layer", word)
	}
	// Changed through the Nimbus API, seen through Lambda's, by id too.
	if st := n.api("PUT", "/api/functions/both", map[string]any{"env": map[string]string{"MODE": "nimbus"}, "timeout": 3000}, nil); st != http.StatusOK {
		t.Fatalf("PUT /api/functions/both: %d", st)
	}
	cfg, err := c.GetFunctionConfiguration(ctx, &awslambda.GetFunctionConfigurationInput{FunctionName: aws.String(f.ID)})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Environment.Variables["MODE"] != "nimbus" || aws.ToInt32(cfg.Timeout) != 3 || aws.ToString(cfg.RevisionId) != "2" || aws.ToString(cfg.FunctionName) != "both" {
		t.Errorf("after a change through the Nimbus API, Lambda's shows %+v", cfg)
	}
	// Deleted through Lambda's, gone from the Nimbus API.
	if _, err := c.DeleteFunction(ctx, &awslambda.DeleteFunctionInput{FunctionName: aws.String("both")}); err != nil {
		t.Fatal(err)
	}
	if st := n.api("GET", "/api/functions/both", nil, nil); st != http.StatusNotFound {
		t.Errorf("GET /api/functions/both after DeleteFunction: %d", st)
	}
	// A layer that is not Nimbus's is refused.
	_, err = c.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String("bad-layer"), Runtime: types.RuntimePython312,
		Role: aws.String("r"), Handler: aws.String("app.handler"), Code: &types.FunctionCode{ZipFile: zipOf(t, map[string]string{"app.py": pyEcho})},
		Layers: []string{"arn:aws:lambda:us-east-1:000000000000:layer:my-layer:3"}})
	wantError[*types.InvalidParameterValueException](t, "CreateFunction with a layer that is not Nimbus's", err)
}

// appSource downloads the zip at url and returns its app.py.
func appSource(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	f, err := zr.Open("app.py")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	src, _ := io.ReadAll(f)
	return string(src)
}

// TestSecretReferencesThroughLambda: Lambda's API shows only a
// function's plain variables, and replacing them keeps its secret
// references, but for a variable it sets plainly.
func TestSecretReferencesThroughLambda(t *testing.T) {
	n := serve(t, "k3y")
	c := n.signed()
	ctx := t.Context()
	for _, name := range []string{"db", "token"} {
		if st := n.api("POST", "/api/secrets", map[string]any{"name": name, "value": "v-" + name}, nil); st != http.StatusCreated {
			t.Fatalf("POST /api/secrets %s: %d", name, st)
		}
	}
	body := map[string]any{"name": "secretive", "runtime": "python", "files": map[string]string{"main.py": pyEcho},
		"env": map[string]any{"MODE": "a", "DB_PASSWORD": map[string]string{"secret": "db"}, "TOKEN": map[string]string{"secret": "token"}}}
	if st := n.api("POST", "/api/functions", body, nil); st != http.StatusCreated {
		t.Fatalf("POST /api/functions: %d", st)
	}
	cfg, err := c.GetFunctionConfiguration(ctx, &awslambda.GetFunctionConfigurationInput{FunctionName: aws.String("secretive")})
	if err != nil {
		t.Fatal(err)
	}
	if v := cfg.Environment.Variables; len(v) != 1 || v["MODE"] != "a" {
		t.Fatalf("Variables %v, want MODE only", v)
	}
	if _, err := c.UpdateFunctionConfiguration(ctx, &awslambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("secretive"),
		Environment: &types.Environment{Variables: map[string]string{"MODE": "b", "TOKEN": "plain"}}}); err != nil {
		t.Fatal(err)
	}
	var f struct {
		Env map[string]any `json:"env"`
	}
	if st := n.api("GET", "/api/functions/secretive", nil, &f); st != http.StatusOK {
		t.Fatalf("GET /api/functions/secretive: %d", st)
	}
	ref, _ := f.Env["DB_PASSWORD"].(map[string]any)
	if len(f.Env) != 3 || f.Env["MODE"] != "b" || f.Env["TOKEN"] != "plain" || ref["secret"] != "db" {
		t.Fatalf("env after UpdateFunctionConfiguration: %v", f.Env)
	}
}
