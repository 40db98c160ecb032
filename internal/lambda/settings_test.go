package lambda_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// urlAndEventConfigs: a function URL made by CreateFunctionUrlConfig
// serves at /fn/{name}; PutFunctionEventInvokeConfig sets the function's
// async settings, as the Nimbus API shows them.
func urlAndEventConfigs(t *testing.T, n *nimbus, c *awslambda.Client) {
	ctx := t.Context()
	create(t, c, "cfg", nil)
	create(t, c, "cfg-dest", nil)

	_, err := c.GetFunctionUrlConfig(ctx, &awslambda.GetFunctionUrlConfigInput{FunctionName: aws.String("cfg")})
	wantError[*types.ResourceNotFoundException](t, "GetFunctionUrlConfig before one is made", err)
	u, err := c.CreateFunctionUrlConfig(ctx, &awslambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("cfg"), AuthType: types.FunctionUrlAuthTypeNone,
		Cors: &types.Cors{AllowOrigins: []string{"https://shop.example"}, MaxAge: aws.Int32(60)}})
	if err != nil || aws.ToString(u.FunctionUrl) != n.url+"/fn/cfg/" || u.AuthType != types.FunctionUrlAuthTypeNone || u.Cors == nil || u.Cors.AllowOrigins[0] != "https://shop.example" {
		t.Fatalf("CreateFunctionUrlConfig: %+v, %v", u, err)
	}
	_, err = c.CreateFunctionUrlConfig(ctx, &awslambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("cfg"), AuthType: types.FunctionUrlAuthTypeNone})
	wantError[*types.ResourceConflictException](t, "a second CreateFunctionUrlConfig", err)
	resp, err := http.Post(aws.ToString(u.FunctionUrl)+"hello?q=1", "application/json", strings.NewReader(`{"from":"url"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"rawPath":"/hello"`) {
		t.Errorf("POST %shello: %d %s", aws.ToString(u.FunctionUrl), resp.StatusCode, body)
	}
	got, err := c.GetFunctionUrlConfig(ctx, &awslambda.GetFunctionUrlConfigInput{FunctionName: aws.String("cfg")})
	if err != nil || aws.ToString(got.FunctionUrl) != aws.ToString(u.FunctionUrl) || got.AuthType != types.FunctionUrlAuthTypeNone || aws.ToInt32(got.Cors.MaxAge) != 60 {
		t.Errorf("GetFunctionUrlConfig: %+v, %v", got, err)
	}
	_, err = c.CreateFunctionUrlConfig(ctx, &awslambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("cfg-dest"), AuthType: types.FunctionUrlAuthTypeAwsIam, InvokeMode: types.InvokeModeResponseStream})
	wantError[*types.InvalidParameterValueException](t, "CreateFunctionUrlConfig streaming", err)

	_, err = c.GetFunctionEventInvokeConfig(ctx, &awslambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("cfg")})
	wantError[*types.ResourceNotFoundException](t, "GetFunctionEventInvokeConfig before one is put", err)
	dest := "arn:aws:lambda:" + region + ":" + account + ":function:cfg-dest"
	put, err := c.PutFunctionEventInvokeConfig(ctx, &awslambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("cfg"),
		MaximumRetryAttempts: aws.Int32(1), MaximumEventAgeInSeconds: aws.Int32(120),
		DestinationConfig: &types.DestinationConfig{OnSuccess: &types.OnSuccess{Destination: aws.String(dest)}, OnFailure: &types.OnFailure{Destination: aws.String("http://127.0.0.1:9/failed")}}})
	if err != nil || aws.ToInt32(put.MaximumRetryAttempts) != 1 || aws.ToInt32(put.MaximumEventAgeInSeconds) != 120 ||
		aws.ToString(put.DestinationConfig.OnSuccess.Destination) != dest || aws.ToString(put.DestinationConfig.OnFailure.Destination) != "http://127.0.0.1:9/failed" {
		t.Fatalf("PutFunctionEventInvokeConfig: %+v, %v", put, err)
	}
	var f struct {
		Async struct {
			MaxRetries         int
			MaxEventAgeSeconds int
			OnSuccess          struct{ Function string }
			OnFailure          struct{ URL string }
		}
	}
	n.api("GET", "/api/functions/cfg", nil, &f)
	if a := f.Async; a.MaxRetries != 1 || a.MaxEventAgeSeconds != 120 || a.OnSuccess.Function != "cfg-dest" || a.OnFailure.URL != "http://127.0.0.1:9/failed" {
		t.Errorf("the Nimbus API shows async settings %+v", a)
	}
	ev, err := c.GetFunctionEventInvokeConfig(ctx, &awslambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("cfg")})
	if err != nil || aws.ToInt32(ev.MaximumRetryAttempts) != 1 || aws.ToString(ev.DestinationConfig.OnSuccess.Destination) != dest || ev.LastModified == nil {
		t.Errorf("GetFunctionEventInvokeConfig: %+v, %v", ev, err)
	}
	_, err = c.PutFunctionEventInvokeConfig(ctx, &awslambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("cfg"),
		DestinationConfig: &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String("arn:aws:sqs:us-east-1:000000000000:q")}}})
	wantError[*types.InvalidParameterValueException](t, "an SQS destination", err)
	_, err = c.PutFunctionEventInvokeConfig(ctx, &awslambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("cfg"), MaximumRetryAttempts: aws.Int32(5)})
	wantError[*types.InvalidParameterValueException](t, "5 retries", err)
}
