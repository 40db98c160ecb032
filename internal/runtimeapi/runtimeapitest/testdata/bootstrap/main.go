// Command bootstrap is a custom runtime for tests of the Runtime API
// relay: a plain client of the Runtime API, with only the standard
// library, whose every call does what its event's "op" says.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

var base = "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime"

type event struct {
	Op    string `json:"op"`
	Text  string `json:"text"`
	Ms    int    `json:"ms"`
	N     int    `json:"n"`
	Code  int    `json:"code"`
	Value any    `json:"value"`
}

func main() {
	if s := os.Getenv("BOOT_INIT_PRINT"); s != "" {
		fmt.Println(s)
	}
	switch os.Getenv("BOOT_MODE") {
	case "init-error":
		post(base+"/init/error", "Runtime.ConfigError",
			`{"errorMessage":"missing setting","errorType":"ConfigError","stackTrace":["main.go:1","main.go:2"]}`)
		os.Exit(1)
	case "exit":
		fmt.Fprintln(os.Stderr, "giving up at init")
		os.Exit(7)
	case "hang":
		select {}
	}
	for {
		resp, err := http.Get(base + "/invocation/next")
		if err != nil {
			fmt.Fprintln(os.Stderr, "next:", err)
			os.Exit(2)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		var ev event
		_ = json.Unmarshal(body, &ev)
		handle(id, resp.Header, ev, body)
	}
}

func handle(id string, h http.Header, ev event, raw []byte) {
	respond := func(v any) int {
		b, _ := json.Marshal(v)
		return post(base+"/invocation/"+id+"/response", "", string(b))
	}
	switch ev.Op {
	case "echo":
		respond(map[string]any{
			"event":    json.RawMessage(raw),
			"id":       id,
			"deadline": h.Get("Lambda-Runtime-Deadline-Ms"),
			"arn":      h.Get("Lambda-Runtime-Invoked-Function-Arn"),
			"trace":    h.Get("Lambda-Runtime-Trace-Id"),
			"client":   h.Get("Lambda-Runtime-Client-Context"),
			"handler":  os.Getenv("_HANDLER"),
			"name":     os.Getenv("AWS_LAMBDA_FUNCTION_NAME"),
			"api":      os.Getenv("AWS_LAMBDA_RUNTIME_API"),
			"env":      os.Getenv("GREETING"),
		})
	case "log":
		fmt.Println("out:", ev.Text)
		fmt.Fprintln(os.Stderr, "err:", ev.Text)
		respond("logged")
	case "raw":
		post(base+"/invocation/"+id+"/response", "", ev.Text)
	case "error":
		post(base+"/invocation/"+id+"/error", "Function.Header",
			`{"errorMessage":"it broke","errorType":"BrokenError","stackTrace":["one","two"]}`)
	case "error-header":
		post(base+"/invocation/"+id+"/error", "HeaderOnlyError", "not json at all")
	case "crash":
		fmt.Println("about to crash")
		os.Exit(ev.Code)
	case "sleep":
		time.Sleep(time.Duration(ev.Ms) * time.Millisecond)
		respond("slept")
	case "big":
		st := respond(strings.Repeat("x", ev.N))
		fmt.Println("big response status", st)
	case "ids":
		// The API's answers to misuse, reported in the result.
		out := map[string]int{
			"unknownResponse": post(base+"/invocation/no-such-id/response", "", `1`),
			"unknownError":    post(base+"/invocation/no-such-id/error", "", `{}`),
			"lateInitError":   post(base+"/init/error", "", `{}`),
			"wrongMethod":     get(base + "/invocation/" + id + "/response"),
			"unknownPath":     get(base + "/nothing"),
		}
		out["first"] = respond(out)
		out["again"] = respond("again")
		// The second answer is refused; the first stands, and this is
		// printed to the relay's stderr (no call is in flight).
		fmt.Println("ids", out)
	case "netns":
		ns, err := os.Readlink("/proc/self/ns/net")
		if err != nil {
			ns = err.Error()
		}
		respond(map[string]string{"netns": ns, "api": os.Getenv("AWS_LAMBDA_RUNTIME_API"), "uid": fmt.Sprint(os.Getuid())})
	case "alloc":
		var keep [][]byte
		for i := 0; i < ev.N; i++ {
			b := make([]byte, 1<<20)
			for j := range b {
				b[j] = byte(j)
			}
			keep = append(keep, b)
		}
		respond(len(keep))
	default:
		respond(ev.Value)
	}
}

func post(url, errType, body string) int {
	req, _ := http.NewRequest("POST", url, bytes.NewBufferString(body))
	if errType != "" {
		req.Header.Set("Lambda-Runtime-Function-Error-Type", errType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, "post:", err)
		return -1
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func get(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return -1
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
