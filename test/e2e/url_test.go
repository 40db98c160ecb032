package e2e_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"testing"
)

// Handlers written for Lambda function URLs, unchanged: they read the
// payload v2.0 event and return a response object.

const pyURL = `import base64, json

def handler(event, context):
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event["isBase64Encoded"] else body.encode()
    seen = {
        "runtime": "python",
        "method": event["requestContext"]["http"]["method"],
        "rawPath": event["rawPath"],
        "q": (event.get("queryStringParameters") or {}).get("q"),
        "cookies": event.get("cookies", []),
        "contentType": event["headers"].get("content-type"),
        "bodyLen": len(raw),
        "bodyHex": raw[:4].hex(),
        "requestId": event["requestContext"]["requestId"],
        "awsRequestId": context.aws_request_id,
    }
    return {
        "statusCode": 201,
        "headers": {"Content-Type": "application/json", "X-Runtime": "python"},
        "cookies": ["seen=1; Path=/", "by=python"],
        "body": json.dumps(seen),
    }
`

const nodeURL = `exports.handler = async (event, context) => {
  const raw = event.body ? Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8') : Buffer.alloc(0);
  const seen = {
    runtime: 'node',
    method: event.requestContext.http.method,
    rawPath: event.rawPath,
    q: (event.queryStringParameters || {}).q,
    cookies: event.cookies || [],
    contentType: event.headers['content-type'],
    bodyLen: raw.length,
    bodyHex: raw.subarray(0, 4).toString('hex'),
    requestId: event.requestContext.requestId,
    awsRequestId: context.awsRequestId,
  };
  return {
    statusCode: 201,
    headers: { 'Content-Type': 'application/json', 'X-Runtime': 'node' },
    cookies: ['seen=1; Path=/', 'by=node'],
    body: JSON.stringify(seen),
  };
};
`

type urlSeen struct {
	Runtime      string   `json:"runtime"`
	Method       string   `json:"method"`
	RawPath      string   `json:"rawPath"`
	Q            string   `json:"q"`
	Cookies      []string `json:"cookies"`
	ContentType  string   `json:"contentType"`
	BodyLen      int      `json:"bodyLen"`
	BodyHex      string   `json:"bodyHex"`
	RequestID    string   `json:"requestId"`
	AWSRequestID string   `json:"awsRequestId"`
}

func TestFunctionURLsPythonAndNode(t *testing.T) {
	n := start(t, "NIMBUS_API_KEY=s3cret")
	for _, f := range []map[string]any{
		{"name": "py-url", "runtime": "python", "code": pyURL, "url": map[string]any{"enabled": true, "auth": "none"}},
		{"name": "node-url", "runtime": "nodejs", "code": nodeURL, "url": map[string]any{"enabled": true, "auth": "key"}},
	} {
		var e apiError
		if st := n.do("POST", "/api/functions", f, &e); st != http.StatusCreated {
			t.Fatalf("create %s: %d %+v", f["name"], st, e)
		}
	}
	binary := []byte{0x89, 'P', 'N', 'G', 0, 0xff, 1, 2}
	for _, tc := range []struct {
		name, key string
	}{{"py-url", ""}, {"node-url", "s3cret"}} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", n.url+"/fn/"+tc.name+"/upload/img?q=cats&q=dogs", bytes.NewReader(binary))
			req.Header.Set("Content-Type", "image/png")
			req.Header.Set("Origin", "https://elsewhere.example") // any origin may call
			req.Header.Add("Cookie", "a=1; b=2")
			if tc.key != "" {
				req.Header.Set("X-Api-Key", tc.key)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("status %d: %s", resp.StatusCode, data)
			}
			var seen urlSeen
			if err := json.Unmarshal(data, &seen); err != nil {
				t.Fatalf("%v: %s", err, data)
			}
			id := resp.Header.Get("X-Nimbus-Execution-Id")
			if seen.Method != "POST" || seen.RawPath != "/upload/img" || seen.Q != "cats,dogs" ||
				!slices.Equal(seen.Cookies, []string{"a=1", "b=2"}) || seen.ContentType != "image/png" ||
				seen.BodyLen != len(binary) || seen.BodyHex != "89504e47" || seen.RequestID != id || seen.AWSRequestID != id {
				t.Errorf("the handler saw %+v (execution %s)", seen, id)
			}
			if got := resp.Header.Values("Set-Cookie"); len(got) != 2 || got[0] != "seen=1; Path=/" {
				t.Errorf("Set-Cookie = %q", got)
			}
			if resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("X-Runtime") == "" {
				t.Errorf("headers %v", resp.Header)
			}
			var ex struct {
				Trigger string `json:"trigger"`
				Status  string `json:"status"`
			}
			if st := n.do("GET", "/api/executions/"+tc.name+"/"+id, nil, &ex); st != 200 || ex.Trigger != "http" || ex.Status != "success" {
				t.Errorf("the execution: %d %+v", st, ex)
			}
		})
	}
	// The key-protected URL refuses a call without the key.
	resp, err := http.Get(n.url + "/fn/node-url")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("node-url without key: %d", resp.StatusCode)
	}
}
