package lambda_test

import (
	"bytes"
	"context"
	cryptorand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/smithy-go"
)

// apiError is err's Lambda error type and HTTP status.
func apiError(t *testing.T, err error) (string, int) {
	t.Helper()
	var ae smithy.APIError
	var re *awshttp.ResponseError
	if !errors.As(err, &ae) || !errors.As(err, &re) {
		t.Fatalf("error %v (%T) is no API error", err, err)
	}
	return ae.ErrorCode(), re.HTTPStatusCode()
}

// signedRequest is a request signed with secret at time at, by header.
func signedRequest(t *testing.T, method, url, secret string, body []byte, at time.Time) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "nimbus", SecretAccessKey: secret}, req,
		hex.EncodeToString(sum[:]), "lambda", region, at); err != nil {
		t.Fatal(err)
	}
	return req
}

// presigned is a presigned URL of GET url, signed with secret at time at
// for expires.
func presigned(t *testing.T, url, secret string, at time.Time, expires time.Duration) string {
	t.Helper()
	req, err := http.NewRequest("GET", url+"?X-Amz-Expires="+strconv.Itoa(int(expires/time.Second)), nil)
	if err != nil {
		t.Fatal(err)
	}
	u, _, err := v4.NewSigner().PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: "nimbus", SecretAccessKey: secret}, req,
		"UNSIGNED-PAYLOAD", "lambda", region, at)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestSigV4 checks the signatures a server with a key takes and those it
// refuses, with Lambda's errors.
func TestSigV4(t *testing.T) {
	const key = "the-api-key"
	n := serve(t, key)
	ctx := t.Context()
	create(t, n.signed(), "sig", nil)
	get := &awslambda.GetFunctionInput{FunctionName: aws.String("sig")}

	for _, tc := range []struct {
		name     string
		c        *awslambda.Client
		wantType string
	}{
		{"unsigned", n.client("", ""), "MissingAuthenticationTokenException"},
		{"wrong secret", n.client("nimbus", "not-the-key"), "InvalidSignatureException"},
		{"unknown key id", n.client("AKIAIOSFODNN7EXAMPLE", key), "UnrecognizedClientException"},
		{"another region", awslambda.New(awslambda.Options{Region: "eu-west-1", BaseEndpoint: aws.String(n.url), RetryMaxAttempts: 1,
			Credentials: credentials.NewStaticCredentialsProvider("nimbus", key, "")}), "InvalidSignatureException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.c.GetFunction(ctx, get)
			if typ, st := apiError(t, err); typ != tc.wantType || st != http.StatusForbidden {
				t.Errorf("%s: %s %d, want %s 403", tc.name, typ, st, tc.wantType)
			}
			_, err = tc.c.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("sig"), Payload: []byte(`{}`)})
			if typ, _ := apiError(t, err); typ != tc.wantType {
				t.Errorf("%s Invoke: %s", tc.name, typ)
			}
		})
	}

	t.Run("clock skew", func(t *testing.T) {
		url := n.url + "/2015-03-31/functions/sig"
		for _, tc := range []struct {
			skew time.Duration
			want int
		}{{-4 * time.Minute, 200}, {4 * time.Minute, 200}, {-6 * time.Minute, 403}, {6 * time.Minute, 403}, {-time.Hour, 403}} {
			st, h, body := rawDo(t, signedRequest(t, "GET", url, key, nil, time.Now().Add(tc.skew)))
			if st != tc.want {
				t.Errorf("signed %s away: %d %s, want %d", tc.skew, st, body, tc.want)
			}
			if st == 403 && (h.Get("X-Amzn-ErrorType") != "InvalidSignatureException" || !bytes.Contains(body, []byte("Signature expired"))) {
				t.Errorf("signed %s away: %s %s", tc.skew, h.Get("X-Amzn-ErrorType"), body)
			}
		}
	})

	t.Run("body covered", func(t *testing.T) {
		url := n.url + "/2015-03-31/functions/sig/invocations"
		req := signedRequest(t, "POST", url, key, []byte(`{"a":1}`), time.Now())
		if st, _, body := rawDo(t, req); st != 200 {
			t.Fatalf("signed Invoke: %d %s", st, body)
		}
		req = signedRequest(t, "POST", url, key, []byte(`{"a":1}`), time.Now())
		req.Body, req.ContentLength = http.NoBody, 0
		tampered := []byte(`{"a":2}`)
		req.Body, req.ContentLength = readCloser(tampered), int64(len(tampered))
		if st, h, _ := rawDo(t, req); st != 403 || h.Get("X-Amzn-ErrorType") != "InvalidSignatureException" {
			t.Errorf("a signed request with another body: %d %s", st, h.Get("X-Amzn-ErrorType"))
		}
	})

	t.Run("presigned", func(t *testing.T) {
		url := n.url + "/2015-03-31/functions/sig/configuration"
		resp, err := http.Get(presigned(t, url, key, time.Now(), time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		var cfg struct{ FunctionName string }
		json.NewDecoder(resp.Body).Decode(&cfg)
		resp.Body.Close()
		if resp.StatusCode != 200 || cfg.FunctionName != "sig" {
			t.Errorf("presigned GET: %d %+v", resp.StatusCode, cfg)
		}
		for name, u := range map[string]string{
			"expired":     presigned(t, url, key, time.Now().Add(-10*time.Minute), time.Minute),
			"wrong key":   presigned(t, url, "other", time.Now(), time.Minute),
			"other path":  strings.Replace(presigned(t, url, key, time.Now(), time.Minute), "/configuration", "", 1),
			"other query": presigned(t, url, key, time.Now(), time.Minute) + "&Qualifier=1",
		} {
			resp, err := http.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 403 || resp.Header.Get("X-Amzn-ErrorType") != "InvalidSignatureException" {
				t.Errorf("presigned, %s: %d %s", name, resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
			}
		}
	})

	// The Nimbus API's Bearer key is not a signature.
	req, _ := http.NewRequest("GET", n.url+"/2015-03-31/functions/sig", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	if st, h, _ := rawDo(t, req); st != 403 || h.Get("X-Amzn-ErrorType") != "IncompleteSignatureException" {
		t.Errorf("Bearer on the Lambda API: %d %s", st, h.Get("X-Amzn-ErrorType"))
	}
}

// TestCrossSite: without a key, a request that a page of another site
// could make a browser send is refused; the SDK's requests pass.
func TestCrossSite(t *testing.T) {
	n := serve(t, "")
	create(t, n.signed(), "site", nil)
	url := n.url + "/2015-03-31/functions/site/invocations"
	for _, tc := range []struct {
		name    string
		headers map[string]string
		want    int
	}{
		{"form post", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 403},
		{"text/plain", map[string]string{"Content-Type": "text/plain"}, 403},
		{"no type (a no-cors fetch of a Blob)", nil, 403},
		{"another site's origin", map[string]string{"Content-Type": "application/json", "Origin": "https://evil.example"}, 403},
		{"JSON", map[string]string{"Content-Type": "application/json"}, 200},
		{"octet-stream, as the SDK's Invoke", map[string]string{"Content-Type": "application/octet-stream"}, 200},
		{"no type, the SDK's headers", map[string]string{"Amz-Sdk-Invocation-Id": "x"}, 200},
		{"no type, X-Amz-Invocation-Type", map[string]string{"X-Amz-Invocation-Type": "RequestResponse"}, 200},
		{"this server's own origin", map[string]string{"Content-Type": "application/json", "Origin": n.url}, 200},
	} {
		req, _ := http.NewRequest("POST", url, strings.NewReader(`{}`))
		for k, v := range tc.headers {
			req.Header.Set(k, v)
		}
		st, h, body := rawDo(t, req)
		if st != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, st, body, tc.want)
		}
		if st == 403 && h.Get("X-Amzn-ErrorType") != "AccessDeniedException" {
			t.Errorf("%s: error type %q", tc.name, h.Get("X-Amzn-ErrorType"))
		}
	}
	// Without a key, signed requests are taken too, whatever the secret.
	if _, err := n.client("nimbus", "anything").GetFunction(t.Context(), &awslambda.GetFunctionInput{FunctionName: aws.String("site")}); err != nil {
		t.Errorf("a signed request to a server without a key: %v", err)
	}
	// Another site's Host (DNS rebinding) is refused, read-only or not.
	req, _ := http.NewRequest("GET", n.url+"/2015-03-31/functions", nil)
	req.Host = "rebound.example:80"
	if st, _, _ := rawDo(t, req); st != 403 {
		t.Errorf("GET with another site's Host: %d", st)
	}
}

// TestUploadsAreHeldOnlyOnceSigned: an upload whose signature does not
// hold is refused without the server holding it in memory (past the
// usual body limit it is spooled to disk while its hash is taken); one
// whose signature holds, as large, is read and deployed.
func TestUploadsAreHeldOnlyOnceSigned(t *testing.T) {
	const key = "the-api-key"
	n := serve(t, key)
	// ~12 MB of JSON: twice the in-memory limit (6 MB).
	noise := make([]byte, 9<<20) // random: the zip cannot shrink it
	if _, err := cryptorand.Read(noise); err != nil {
		t.Fatal(err)
	}
	zip := zipOf(t, map[string]string{"app.py": pyEcho, "noise.bin": string(noise)})
	body, err := json.Marshal(map[string]any{"FunctionName": "big", "Runtime": "python3.12", "Handler": "app.handler",
		"Role": "arn:aws:iam::000000000000:role/ignored", "Code": map[string]any{"ZipFile": zip}})
	if err != nil {
		t.Fatal(err)
	}

	forged := signedRequest(t, "POST", n.url+"/2015-03-31/functions", "not-the-key", body, time.Now())
	var before, after goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&before)
	resp, err := http.DefaultClient.Do(forged)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	goruntime.ReadMemStats(&after)
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Amzn-ErrorType") != "InvalidSignatureException" {
		t.Errorf("a forged upload: %d %s", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > uint64(len(body))/2 {
		t.Errorf("the server allocated %d MB for a forged upload of %d MB", grew>>20, len(body)>>20)
	}

	resp, err = http.DefaultClient.Do(signedRequest(t, "POST", n.url+"/2015-03-31/functions", key, body, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("a signed upload of %d MB: %d", len(body)>>20, resp.StatusCode)
	}
}
