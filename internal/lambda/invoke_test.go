package lambda_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// invocations: results, handler errors, logs, the three invocation
// types, client context in Python and Node, bad payloads.
func invocations(t *testing.T, n *nimbus, c *awslambda.Client) {
	ctx := t.Context()
	create(t, c, "inv", nil)

	res := invoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String("inv"), Payload: []byte(`{"x":"tail me"}`), LogType: types.LogTypeTail}, nil)
	logs, err := base64.StdEncoding.DecodeString(aws.ToString(res.LogResult))
	if err != nil || !strings.Contains(string(logs), `echo {"x": "tail me"}`) || !strings.Contains(string(logs), "START RequestId: ") ||
		!strings.Contains(string(logs), "REPORT RequestId: ") || len(logs) > 4096 {
		t.Errorf("LogResult %q, %v", logs, err)
	}
	if res.StatusCode != http.StatusOK || res.FunctionError != nil {
		t.Errorf("Invoke: status %d, function error %v", res.StatusCode, res.FunctionError)
	}
	// Only the tail of long logs: their last 4 KB.
	long := strings.Repeat("y", 20000) + "THE END"
	res = invoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String("inv"), Payload: []byte(`{"x":"` + long + `"}`), LogType: types.LogTypeTail}, nil)
	if logs, _ = base64.StdEncoding.DecodeString(aws.ToString(res.LogResult)); len(logs) != 4096 || !strings.Contains(string(logs), "THE END") {
		t.Errorf("LogResult of long logs: %d bytes, %.100q…", len(logs), logs)
	}
	if res = invoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String("inv")}, nil); res.LogResult != nil {
		t.Errorf("LogResult without LogType Tail: %q", aws.ToString(res.LogResult))
	}

	// A handler's error: 200, X-Amz-Function-Error, Lambda's error body.
	var fe struct {
		ErrorMessage string   `json:"errorMessage"`
		ErrorType    string   `json:"errorType"`
		StackTrace   []string `json:"stackTrace"`
	}
	res = invoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String("inv"), Payload: []byte(`{"fail":"on purpose"}`)}, &fe)
	if res.StatusCode != http.StatusOK || aws.ToString(res.FunctionError) != "Unhandled" || fe.ErrorType != "ValueError" ||
		fe.ErrorMessage != "asked to fail: on purpose" || len(fe.StackTrace) == 0 || !strings.Contains(strings.Join(fe.StackTrace, "\n"), "app.py") {
		t.Errorf("a failing handler: %d %q %+v", res.StatusCode, aws.ToString(res.FunctionError), fe)
	}

	// DryRun: 204, nothing runs; of a missing function: not found.
	if res = invoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String("inv"), InvocationType: types.InvocationTypeDryRun}, nil); res.StatusCode != http.StatusNoContent {
		t.Errorf("DryRun: %d", res.StatusCode)
	}
	_, err = c.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("missing"), InvocationType: types.InvocationTypeDryRun})
	wantError[*types.ResourceNotFoundException](t, "DryRun of a missing function", err)

	// Event: 202 at once, and the call runs from the async queue.
	res = invoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String("inv"), InvocationType: types.InvocationTypeEvent, Payload: []byte(`{"async":"yes"}`)}, nil)
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("Event: %d", res.StatusCode)
	}
	eventually(t, "the Event invocation to run", func() bool {
		var h struct {
			Executions []struct {
				Trigger string          `json:"trigger"`
				Status  string          `json:"status"`
				Result  json.RawMessage `json:"result"`
			} `json:"executions"`
		}
		n.api("GET", "/api/executions/inv/history", nil, &h)
		for _, ex := range h.Executions {
			var r struct{ Event struct{ Async string } }
			if ex.Trigger == "async" && ex.Status == "success" && json.Unmarshal(ex.Result, &r) == nil && r.Event.Async == "yes" {
				return true
			}
		}
		return false
	})

	// Client context reaches Python's context.client_context and Node's
	// context.clientContext.
	if _, err := c.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String("inv-node"), Runtime: types.RuntimeNodejs22x,
		Role: aws.String("r"), Handler: aws.String("index.handler"), Code: &types.FunctionCode{ZipFile: zipOf(t, map[string]string{"index.js": nodeEcho})}}); err != nil {
		t.Fatal(err)
	}
	cc := base64.StdEncoding.EncodeToString([]byte(`{"client":{"app_title":"shop","installation_id":"i-9"},"custom":{"tenant":"t1"},"env":{"locale":"de"}}`))
	for _, name := range []string{"inv", "inv-node"} {
		var got struct {
			Custom map[string]string
			App    string
		}
		invoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String(name), ClientContext: aws.String(cc)}, &got)
		if got.Custom["tenant"] != "t1" || got.App != "shop" {
			t.Errorf("%s saw client context %+v", name, got)
		}
		var none struct {
			Custom map[string]string
			App    string
		}
		invoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String(name)}, &none)
		if none.Custom != nil || none.App != "" {
			t.Errorf("%s saw a client context none was sent: %+v", name, none)
		}
	}
	_, err = c.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("inv"), ClientContext: aws.String("not base64 JSON")})
	wantError[*types.InvalidRequestContentException](t, "Invoke with a bad client context", err)

	_, err = c.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("inv"), Payload: []byte(`{not json`)})
	wantError[*types.InvalidRequestContentException](t, "Invoke with a payload that is not JSON", err)
	_, err = c.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("inv"), Payload: []byte(`"` + strings.Repeat("z", 7<<20) + `"`)})
	wantError[*types.RequestTooLargeException](t, "Invoke with 7 MB", err)
}

// TestTooManyRequestsAndServiceException: a call that finds the function
// at its instance limit for longer than the queue timeout is refused with
// Lambda's throttling error and Retry-After; a call whose driver is not
// available (a docker function, no daemon at DOCKER_HOST) with
// ServiceException.
func TestTooManyRequestsAndServiceException(t *testing.T) {
	n := serve(t, "", "NIMBUS_QUEUE_TIMEOUT", "300ms", "DOCKER_HOST", "unix:///nonexistent/docker.sock")
	c := n.signed()
	ctx := t.Context()
	if _, err := c.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String("busy"), Runtime: types.RuntimePython312,
		Role: aws.String("r"), Handler: aws.String("app.handler"), Timeout: aws.Int32(60),
		Code: &types.FunctionCode{ZipFile: zipOf(t, map[string]string{"app.py": "import time\n\ndef handler(event, context):\n    time.sleep(event.get('sleep', 0))\n    return 'done'\n"})}}); err != nil {
		t.Fatal(err)
	}
	if st := n.api("PUT", "/api/functions/busy", map[string]any{"maxInstances": 1}, nil); st != http.StatusOK {
		t.Fatalf("maxInstances 1: %d", st)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { // holds the one instance for 15 s
		// On a loaded machine a probe below may take the instance
		// first (its cold start outlasting the queue timeout): then
		// this call is the one throttled, and tries again.
		for ctx.Err() == nil {
			_, err := c.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("busy"), Payload: []byte(`{"sleep": 15}`)})
			var tooMany *types.TooManyRequestsException
			if !errors.As(err, &tooMany) {
				return
			}
		}
	})
	var throttled *types.TooManyRequestsException
	eventually(t, "a call to be throttled", func() bool {
		_, err := c.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("busy")})
		if err == nil {
			return false // it came before the long call took the instance
		}
		throttled = wantError[*types.TooManyRequestsException](t, "Invoke of a function at its limit", err)
		return true
	})
	if aws.ToString(throttled.RetryAfterSeconds) != "1" {
		t.Errorf("Retry-After %q", aws.ToString(throttled.RetryAfterSeconds))
	}

	create(t, c, "dockerless", nil)
	if st := n.api("PUT", "/api/functions/dockerless", map[string]any{"driver": "docker"}, nil); st != http.StatusOK {
		t.Fatalf("driver docker: %d", st)
	}
	_, err := c.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("dockerless")})
	if e := wantError[*types.ServiceException](t, "Invoke of a function whose driver is unavailable", err); !strings.Contains(e.ErrorMessage(), "docker") {
		t.Errorf("ServiceException %q does not say what is unavailable", e.ErrorMessage())
	}
}
