package docker

import (
	"context"
	"fmt"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/fn"
)

// LocalRepo is the repository of the runtime images built from this
// host's interpreters (package build, `nimbus images build`) for rt:
// nimbus/runtime-python, nimbus/runtime-nodejs.
func LocalRepo(rt string) string { return "nimbus/runtime-" + rt }

// WorkDir is where containers see the function's files: the working
// directory of the images built for the driver.
const WorkDir = taskDir

// imageResolver finds the image each runtime's containers run: the
// configured one if present, else pulled, else (for the defaults) the
// newest image built locally (LocalRepo). One resolution per runtime runs
// at a time; a failure is remembered for a while.
type imageResolver struct {
	d   *Driver
	mu  sync.Mutex
	cur map[string]*resolution
}

type resolution struct {
	done  chan struct{}
	image string
	err   error
	at    time.Time
}

const (
	resolveRetry = 10 * time.Second // a failed resolution is tried again after
	pullTimeout  = 10 * time.Minute
)

func newImageResolver(d *Driver) *imageResolver {
	return &imageResolver{d: d, cur: map[string]*resolution{}}
}

// resolve returns the image for rt, waiting for a pull in progress until
// ctx ends.
func (r *imageResolver) resolve(ctx context.Context, rt string) (string, error) {
	r.mu.Lock()
	res := r.cur[rt]
	if res == nil || (driver.IsClosed(res.done) && res.err != nil && time.Since(res.at) > resolveRetry) {
		res = &resolution{done: make(chan struct{})}
		r.cur[rt] = res
		go func() {
			res.image, res.err = r.run(rt)
			res.at = time.Now()
			close(res.done)
		}()
	}
	r.mu.Unlock()
	select {
	case <-res.done:
		return res.image, res.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// forget drops what is known of rt's image: it was removed.
func (r *imageResolver) forget(rt string) {
	r.mu.Lock()
	if res := r.cur[rt]; res != nil && driver.IsClosed(res.done) {
		delete(r.cur, rt)
	}
	r.mu.Unlock()
}

func (r *imageResolver) run(rt string) (string, error) {
	d := r.d
	ctx, cancel := context.WithTimeout(d.ctx, pullTimeout)
	defer cancel()
	want := d.opts.images[rt]
	var pullErr error
	if want == "" {
		// A runtime with no public image (provided): only a local one.
		pullErr = fmt.Errorf("no public image")
	} else if _, err := d.cli.ImageInspect(ctx, want); err == nil {
		return want, nil
	} else if !cerrdefs.IsNotFound(err) {
		return "", unavailable("inspect image "+want, err)
	} else {
		pullErr = fmt.Errorf("%s=never", EnvPull)
	}
	if want != "" && !d.opts.noPull {
		if pullErr = r.pull(ctx, want); pullErr == nil {
			return want, nil
		}
	}
	if !d.opts.explicit[rt] {
		if local, err := r.local(ctx, rt); err == nil && local != "" {
			d.log.Info("using the locally built runtime image", "runtime", rt, "image", local, "absent", want, "pull", pullErr)
			return local, nil
		}
	}
	msg := fmt.Sprintf("no image for %s: %s is not present and could not be pulled (%v)", rt, want, pullErr)
	if !d.opts.explicit[rt] {
		msg += "; build one from this host's interpreters with `nimbus images build`"
	}
	return "", fmt.Errorf("docker: %s: %w", msg, fn.ErrUnavailable)
}

// pull pulls image, logging its progress every few seconds.
func (r *imageResolver) pull(ctx context.Context, image string) error {
	log := r.d.log
	log.Info("pulling image", "image", image)
	resp, err := r.d.cli.ImagePull(ctx, image, client.ImagePullOptions{})
	if err != nil {
		return err
	}
	type layer struct{ cur, total int64 }
	layers := map[string]*layer{}
	last := time.Now()
	for m, err := range resp.JSONMessages(ctx) {
		if err != nil {
			return err
		}
		if m.Error != nil {
			return fmt.Errorf("%s", m.Error.Message)
		}
		if m.ID != "" && m.Progress != nil && m.Progress.Total > 0 {
			layers[m.ID] = &layer{m.Progress.Current, m.Progress.Total}
		}
		if time.Since(last) > 2*time.Second {
			last = time.Now()
			var cur, total int64
			for _, l := range layers {
				cur, total = cur+l.cur, total+l.total
			}
			log.Info("pulling image", "image", image, "status", m.Status, "downloadedMB", cur>>20, "ofMB", total>>20)
		}
	}
	log.Info("pulled image", "image", image)
	return nil
}

// local returns the newest image built locally for rt, or "".
func (r *imageResolver) local(ctx context.Context, rt string) (string, error) {
	res, err := r.d.cli.ImageList(ctx, client.ImageListOptions{
		Filters: make(client.Filters).Add("reference", LocalRepo(rt)),
	})
	if err != nil {
		return "", err
	}
	var (
		best    string
		created int64
	)
	for _, im := range res.Items {
		if len(im.RepoTags) == 0 || im.Created < created {
			continue
		}
		best, created = im.RepoTags[0], im.Created
	}
	return best, nil
}
