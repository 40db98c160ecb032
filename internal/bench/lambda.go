package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// lambdaScenario times Invoke through the Lambda API.
const lambdaScenario = "invoke via Lambda API"

// lambdaInvoke times sequential warm calls of one function through the
// Lambda API's Invoke (POST /2015-03-31/functions/{name}/invocations)
// against the same calls through POST /api/executions/{id}, interleaved
// three times as warmLatency does. With an API key the Lambda calls are
// SigV4-signed (access key id "nimbus"), and the signing, done by this
// client before each call's clock starts, is not counted.
func (r *runner) lambdaInvoke(ctx context.Context) error {
	r.logf("%s (no-op Python handler, sequential, against POST /api/executions of the same function)", lambdaScenario)
	const name = "bench-lambda"
	id, err := r.function(ctx, name, runtime.Python, pyNoop, 8)
	if err != nil {
		return fmt.Errorf("%s: %w", lambdaScenario, err)
	}
	defer r.api(context.WithoutCancel(ctx), "DELETE", "/api/functions/"+name, nil, nil)
	api, invoke := r.cfg.URL+"/api/executions/"+id, r.cfg.URL+"/2015-03-31/functions/"+name+"/invocations"
	for range 200 { // warm up connections, the instance, the caches
		if _, _, err := r.call(ctx, api, event); err != nil {
			return err
		}
		_, out, err := r.lambdaCall(ctx, invoke)
		if err != nil {
			return err
		}
		if !bytes.Equal(bytes.TrimSpace(out), event) {
			return fmt.Errorf("%s: %s answered %q, want the event back", lambdaScenario, invoke, out)
		}
	}
	var viaLambda, viaAPI []time.Duration
	for range 3 {
		var a []time.Duration
		for end := time.Now().Add(r.cfg.Duration); time.Now().Before(end); {
			d, _, err := r.lambdaCall(ctx, invoke)
			if err != nil {
				return err
			}
			a = append(a, d)
		}
		b, err := r.sequential(ctx, api)
		if err != nil {
			return err
		}
		viaLambda, viaAPI = append(viaLambda, a...), append(viaAPI, b...)
	}
	for _, q := range []float64{.5, .99} {
		l, a := percentile(viaLambda, q), percentile(viaAPI, q)
		r.add(Result{Scenario: lambdaScenario, Metric: fmt.Sprintf("p%.0f", q*100), Unit: "ms", Nimbus: ms(l), Baseline: ms(a),
			BaselineName: "POST /api/executions", Note: fmt.Sprintf("the Lambda API adds %.3f ms", ms(l-a))})
	}
	return nil
}

// lambdaCall is one Invoke of url, as the AWS SDK sends it: the event as
// an application/octet-stream body, signed when the server has a key.
func (r *runner) lambdaCall(ctx context.Context, url string) (time.Duration, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(event))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	if r.cfg.APIKey != "" {
		sum := sha256.Sum256(event)
		creds := aws.Credentials{AccessKeyID: "nimbus", SecretAccessKey: r.cfg.APIKey}
		if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "lambda", "us-east-1", time.Now()); err != nil {
			return 0, nil, err
		}
	}
	t0 := time.Now()
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	out, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(t0)
	if err == nil && (resp.StatusCode != http.StatusOK || resp.Header.Get("X-Amz-Function-Error") != "") {
		err = fmt.Errorf("%s: %d %s %s", url, resp.StatusCode, resp.Header.Get("X-Amz-Function-Error"), out)
	}
	return d, out, err
}
