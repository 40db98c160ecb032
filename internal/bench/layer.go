package bench

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// The big layer: bigLayerMB MiB of random (so incompressible) bytes in
// bigLayerFiles files, beside a small module the handler imports, in
// Lambda's layout.
const (
	bigLayerMB        = 20
	bigLayerFiles     = 4
	bigLayerFileBytes = bigLayerMB << 20 / bigLayerFiles
	bigLayerModule    = "NAME = 'biglayer'\n"
)

// layerScenario names the figure of cold starts with the big layer.
var layerScenario = fmt.Sprintf("cold start, %d MB layer", bigLayerMB)

// bigLayer is the layer's zip, the same bytes on every run (the random
// bytes come from a fixed seed), so that uploading it again to the same
// server stores nothing new.
func bigLayer() ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	modified := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	add := func(name string, method uint16, data []byte) error {
		hdr := &zip.FileHeader{Name: name, Method: method, Modified: modified}
		hdr.SetMode(0o644)
		w, err := zw.CreateHeader(hdr)
		if err == nil {
			_, err = w.Write(data)
		}
		return err
	}
	if err := add("python/biglayer/__init__.py", zip.Deflate, []byte(bigLayerModule)); err != nil {
		return nil, err
	}
	rnd := rand.NewChaCha8([32]byte{'n', 'i', 'm', 'b', 'u', 's'})
	data := make([]byte, bigLayerFileBytes)
	for i := range bigLayerFiles {
		rnd.Read(data)
		if err := add(fmt.Sprintf("python/biglayer/data/blob%d.bin", i), zip.Store, data); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// layerSpec is the Python function whose handler imports the module
// biglayer: from the big layer, or from its own code when it has none,
// so that both import the same small module; n makes its code new.
func layerSpec(name, layer string, n int) map[string]any {
	files := map[string]string{
		"main.py": fmt.Sprintf("import biglayer\ndef handler(event, context):\n    return {'module': biglayer.NAME}\n# %d\n", n),
	}
	spec := map[string]any{"name": name, "runtime": runtime.Python, "files": files, "maxInstances": 1, "timeout": 10000}
	if layer != "" {
		spec["layers"] = []string{layer}
	} else {
		files["biglayer/__init__.py"] = bigLayerModule
	}
	return spec
}

// layerColdStart measures cold starts of a Python function with a big
// uploaded layer against the same function without it, interleaved, as
// coldStarts measures them: the first call after creating the function,
// at rest. A layer is mounted into the instance, not copied, so its size
// should not show.
func (r *runner) layerColdStart(ctx context.Context) error {
	scenario := layerScenario
	r.logf("%s (Python, first call after create, the handler importing a module of the layer)", scenario)
	zip, err := bigLayer()
	if err != nil {
		return err
	}
	var layer struct{ ID string }
	if err := r.send(ctx, "POST", "/api/layers", "application/zip", zip, &layer); err != nil {
		return fmt.Errorf("%s: upload the layer: %w", scenario, err)
	}
	names := []string{"bench-cold-layer", "bench-cold-nolayer"}
	defer func() {
		for _, n := range names {
			_ = r.api(context.WithoutCancel(ctx), "DELETE", "/api/functions/"+n, nil, nil)
		}
	}()
	var with, without []time.Duration
	for i := range r.cfg.Colds {
		for _, withLayer := range []bool{i%2 == 0, i%2 != 0} {
			name, id := names[1], ""
			if withLayer {
				name, id = names[0], layer.ID
			}
			time.Sleep(250 * time.Millisecond) // at rest, as in coldStarts
			var f struct{ ID string }
			if _, err := r.create(ctx, layerSpec(name, id, i), &f); err != nil {
				return fmt.Errorf("%s: %w", scenario, err)
			}
			d, out, err := r.call(ctx, r.cfg.URL+"/api/executions/"+f.ID, event)
			var ex struct {
				ColdStart bool
				Result    struct{ Module string }
			}
			if err == nil {
				err = json.Unmarshal(out, &ex)
			}
			if err != nil || ex.Result.Module != "biglayer" || !ex.ColdStart {
				return fmt.Errorf("%s: %s's first call, want a cold start importing biglayer: %v %s", scenario, name, err, out)
			}
			if withLayer {
				with = append(with, d)
			} else {
				without = append(without, d)
			}
		}
	}
	r.add(Result{Scenario: scenario, Metric: "p50", Unit: "ms", Nimbus: ms(percentile(with, .5)), Baseline: ms(percentile(without, .5)),
		BaselineName: "without the layer"})
	return nil
}
