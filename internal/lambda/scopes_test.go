package lambda_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/smithy-go"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// TestScopedKeys: a key made with POST /api/keys signs Lambda requests
// with its id as the access key id and the whole key as the secret, and
// may do only what its scopes and function globs let it.
func TestScopedKeys(t *testing.T) {
	n := serve(t, "b00t")
	ctx := t.Context()
	for _, name := range []string{"orders-eu", "billing"} {
		if _, err := n.signed().CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String(name), Runtime: types.RuntimePython312,
			Role: aws.String("r"), Handler: aws.String("app.handler"),
			Code: &types.FunctionCode{ZipFile: zipOf(t, map[string]string{"app.py": "def handler(event, context):\n    return 'ok'\n"})}}); err != nil {
			t.Fatal(err)
		}
	}
	key := func(scopes []string, globs []string) *awslambda.Client {
		var k struct{ ID, Secret string }
		if st := n.api("POST", "/api/keys", map[string]any{"name": "k", "scopes": scopes, "functions": globs}, &k); st != http.StatusCreated {
			t.Fatalf("create key: %d", st)
		}
		return n.client(k.ID, k.Secret)
	}
	hook := key([]string{"invoke"}, []string{"orders-*"})
	if out, err := hook.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("orders-eu")}); err != nil || string(out.Payload) != `"ok"` {
		t.Fatalf("invoke with an invoke key: %v", err)
	}
	_, err := hook.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("billing")})
	if e := denied(t, "Invoke outside the key's globs", err); e != nil && !strings.Contains(e.ErrorMessage(), "billing") {
		t.Errorf("the refusal does not name the function: %s", e.ErrorMessage())
	}
	_, err = hook.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("orders-eu")})
	denied(t, "GetFunction with an invoke key", err)

	ci := key([]string{"deploy"}, []string{"orders-*"})
	_, err = ci.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String("billing-2"), Runtime: types.RuntimePython312,
		Role: aws.String("r"), Handler: aws.String("app.handler"), Code: &types.FunctionCode{ZipFile: zipOf(t, map[string]string{"app.py": "x = 1\n"})}})
	denied(t, "CreateFunction outside the key's globs", err)
	list, err := ci.ListFunctions(ctx, &awslambda.ListFunctionsInput{})
	if err != nil || len(list.Functions) != 1 || aws.ToString(list.Functions[0].FunctionName) != "orders-eu" {
		t.Errorf("ListFunctions with a key for orders-*: %v, %v", list, err)
	}
	_, err = ci.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("orders-eu")})
	denied(t, "Invoke with a deploy key", err)

	// A wrong secret for a real key id is refused as a bad signature.
	var k struct{ ID, Secret string }
	n.api("POST", "/api/keys", map[string]any{"name": "k", "scopes": []string{"read"}}, &k)
	_, err = n.client(k.ID, k.Secret+"x").ListFunctions(ctx, &awslambda.ListFunctionsInput{})
	if err == nil || !strings.Contains(err.Error(), "signature") {
		t.Errorf("a wrong secret: %v", err)
	}
}

// denied checks that err is Lambda's AccessDeniedException (a 403), which
// the SDK has no type for.
func denied(t *testing.T, what string, err error) smithy.APIError {
	t.Helper()
	var e smithy.APIError
	if !errors.As(err, &e) || e.ErrorCode() != "AccessDeniedException" {
		t.Errorf("%s: %v, want AccessDeniedException", what, err)
		return nil
	}
	return e
}
