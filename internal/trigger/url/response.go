package url

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// response is the HTTP response a function's result maps to.
type response struct {
	status  int
	headers map[string]string
	cookies []string
	body    []byte
}

// errBadResponse: the handler returned a response object that is not one.
var errBadResponse = errors.New("bad response object")

// mapResult turns what a handler returned into an HTTP response, by
// Lambda's rules for function URLs: a JSON object with "statusCode" is a
// response object (statusCode, headers, cookies, body, isBase64Encoded);
// any other value, a string included, is the body of a 200 response of
// type application/json, as its JSON.
func mapResult(result json.RawMessage) (*response, error) {
	result = bytes.TrimSpace(result)
	if len(result) == 0 {
		result = json.RawMessage("null")
	}
	var obj map[string]json.RawMessage
	if result[0] != '{' || json.Unmarshal(result, &obj) != nil || obj["statusCode"] == nil {
		return &response{status: http.StatusOK, headers: map[string]string{"content-type": "application/json"}, body: result}, nil
	}
	var (
		resp   = &response{headers: map[string]string{}}
		status json.Number
		b64    bool
	)
	if err := json.Unmarshal(obj["statusCode"], &status); err != nil {
		return nil, fmt.Errorf("%w: statusCode is not a number", errBadResponse)
	}
	n, err := strconv.Atoi(status.String())
	if err != nil || n < 100 || n > 599 {
		return nil, fmt.Errorf("%w: statusCode %s is not an HTTP status", errBadResponse, status)
	}
	resp.status = n
	if raw, ok := obj["headers"]; ok && string(raw) != "null" {
		var hs map[string]json.RawMessage
		if err := json.Unmarshal(raw, &hs); err != nil {
			return nil, fmt.Errorf("%w: headers is not an object", errBadResponse)
		}
		for k, v := range hs {
			var s string
			if json.Unmarshal(v, &s) != nil {
				s = string(v) // a number or a boolean, as written
			}
			resp.headers[strings.ToLower(k)] = s
		}
	}
	if raw, ok := obj["cookies"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &resp.cookies); err != nil {
			return nil, fmt.Errorf("%w: cookies is not a list of strings", errBadResponse)
		}
	}
	if raw, ok := obj["isBase64Encoded"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &b64); err != nil {
			return nil, fmt.Errorf("%w: isBase64Encoded is not a boolean", errBadResponse)
		}
	}
	if raw, ok := obj["body"]; ok && string(raw) != "null" {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			s = string(raw) // not a string: its JSON
		}
		resp.body = []byte(s)
		if b64 {
			if resp.body, err = base64.StdEncoding.DecodeString(s); err != nil {
				return nil, fmt.Errorf("%w: body is not valid base64", errBadResponse)
			}
		}
	}
	if _, ok := resp.headers["content-type"]; !ok {
		resp.headers["content-type"] = "application/json" // Lambda's default
	}
	return resp, nil
}

// hopHeaders are headers a handler cannot set: they belong to the
// connection, which the server writes itself.
var hopHeaders = map[string]bool{
	"connection": true, "keep-alive": true, "transfer-encoding": true, "te": true, "trailer": true,
	"upgrade": true, "content-length": true, "proxy-connection": true,
}

// write sends resp; when dropCORS (the URL has CORS settings, which
// decide) the handler's own Access-Control-* headers are left out.
func (resp *response) write(w http.ResponseWriter, dropCORS bool) {
	h := w.Header()
	for k, v := range resp.headers {
		if hopHeaders[k] || !validName(k) || (dropCORS && strings.HasPrefix(k, "access-control-")) {
			continue
		}
		h.Set(k, v)
	}
	for _, c := range resp.cookies {
		h.Add("Set-Cookie", c)
	}
	h.Set("Content-Length", strconv.Itoa(len(resp.body)))
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

// writeMessage writes a Lambda-style error: {"message": msg}.
func writeMessage(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(map[string]string{"message": msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
