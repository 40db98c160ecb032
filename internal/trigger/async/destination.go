package async

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// record is a destination record, Lambda's shape: what a destination
// function gets as its event, and a URL as its body.
type record struct {
	Version         string          `json:"version"`
	Timestamp       time.Time       `json:"timestamp"`
	RequestContext  requestContext  `json:"requestContext"`
	RequestPayload  json.RawMessage `json:"requestPayload"`
	ResponseContext responseContext `json:"responseContext"`
	ResponsePayload json.RawMessage `json:"responsePayload,omitempty"`
}

type requestContext struct {
	RequestID              string `json:"requestId"`
	FunctionArn            string `json:"functionArn"`
	Condition              string `json:"condition"` // Success, RetriesExhausted, EventAgeExceeded
	ApproximateInvokeCount int    `json:"approximateInvokeCount"`
}

type responseContext struct {
	StatusCode      int    `json:"statusCode"`
	ExecutedVersion string `json:"executedVersion"`
	FunctionError   string `json:"functionError,omitempty"`
}

// send delivers the call's outcome to d, if any. A function destination
// gets it as a new async call (an idempotency key per call and outcome:
// sent again after a redelivery, it is queued once); a URL gets it POSTed,
// tried three times.
func (c *delivery) send(d *fn.Destination, condition string, ex *fn.Execution) {
	if d == nil {
		return
	}
	q := c.q
	r := record{
		Version:   "1.0",
		Timestamp: time.Now().UTC(),
		RequestContext: requestContext{
			RequestID: c.id, FunctionArn: "nimbus:function:" + c.f.Name + ":$LATEST",
			Condition: condition, ApproximateInvokeCount: c.attempt,
		},
		RequestPayload:  json.RawMessage(c.event),
		ResponseContext: responseContext{StatusCode: 200, ExecutedVersion: "$LATEST"},
	}
	if !json.Valid(r.RequestPayload) {
		r.RequestPayload = json.RawMessage("null")
	}
	if ex.Status == fn.StatusSuccess {
		r.ResponsePayload = ex.Result
	} else {
		r.ResponseContext.FunctionError = "Unhandled"
		var e fn.ErrorInfo
		if ex.Error != nil {
			e = *ex.Error
		}
		r.ResponsePayload, _ = json.Marshal(map[string]string{"errorType": e.Type, "errorMessage": e.Message})
	}
	body, err := json.Marshal(r)
	if err != nil {
		q.log.Error("destination record", "function", c.f.Name, "error", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if d.Function != "" {
		err = q.sendToFunction(ctx, d.Function, body, c.id+"/"+condition)
	} else {
		err = q.post(ctx, d.URL, c.id, body)
	}
	if err != nil {
		q.stats.DestinationFailures.Add(1)
		q.log.Warn("async destination", "function", c.f.Name, "execution", c.id, "condition", condition, "error", err)
	}
}

func (q *Queue) sendToFunction(ctx context.Context, name string, body []byte, key string) error {
	base, qualifier := fn.ParseQualifier(name)
	f, err := q.cfg.Functions.Resolve(ctx, base)
	if err != nil {
		return fmt.Errorf("destination function %s: %w", name, err)
	}
	_, err = q.Enqueue(ctx, f, Call{Trigger: fn.TriggerDestination, Event: body, Qualifier: qualifier, IdempotencyKey: "destination/" + key})
	return err
}

func (q *Queue) post(ctx context.Context, url, id string, body []byte) error {
	var err error
	for try, wait := 1, time.Second; try <= 3; try, wait = try+1, 2*wait {
		if err = q.postOnce(ctx, url, id, body); err == nil {
			return nil
		}
		if try < 3 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return err
			}
		}
	}
	return err
}

func (q *Queue) postOnce(ctx context.Context, url, id string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "nimbus-destination/1")
	req.Header.Set("X-Nimbus-Execution-Id", id)
	resp, err := q.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("destination %s answered %s", url, resp.Status)
	}
	return nil
}
