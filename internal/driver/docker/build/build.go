package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/nimbusfaas/nimbus/internal/driver/docker"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/image"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// layoutVersion changes when Build lays images out differently.
const layoutVersion = "3"

// Config says which runtime images to build, from which interpreters.
type Config struct {
	Host         string               // DOCKER_HOST; empty means the default socket
	Interpreters runtime.Interpreters // the host's interpreters to copy
	Runtimes     []string             // runtime names; empty means every runtime
	Force        bool                 // build even when the tag exists
}

// Result is one runtime image.
type Result struct {
	Runtime string
	Image   string // nimbus/runtime-python:<content hash>
	Built   bool   // false: it existed already
	Files   int
	Bytes   int64 // of file content
	Took    time.Duration
}

// Build makes, without any network, an image per runtime from this host's
// interpreter: what image.Collect gathers (the executable, the shared
// libraries it and its extension modules load, the language's standard
// library, time zones), /bin/sh and a passwd file, imported through the
// Engine API as one layer. The tag is a hash of what goes in (paths,
// sizes, modes, times), so an image is built only when the interpreter
// changed; the driver uses the newest one when its configured image is the
// default, absent and cannot be pulled.
func Build(ctx context.Context, cfg Config) ([]Result, error) {
	opts := []client.Opt{client.WithAPIVersionNegotiation()}
	if cfg.Host != "" {
		opts = append(opts, client.WithHost(cfg.Host))
	}
	cli, err := client.New(opts...)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return nil, fmt.Errorf("docker: no daemon answers: %v: %w", err, fn.ErrUnavailable)
	}
	rts := cfg.Runtimes
	if len(rts) == 0 {
		rts = runtime.Names()
	}
	var out []Result
	for _, rt := range rts {
		t0 := time.Now()
		tr, err := Tree(ctx, rt, cfg.Interpreters)
		if err != nil {
			return out, fmt.Errorf("build %s image: %w", rt, err)
		}
		res := Result{Runtime: rt, Image: docker.LocalRepo(rt) + ":" + tag(tr, rt), Files: tr.Len(), Bytes: tr.Bytes()}
		if _, err := cli.ImageInspect(ctx, res.Image); err == nil && !cfg.Force {
			res.Took = time.Since(t0)
			out = append(out, res)
			continue
		} else if err != nil && !cerrdefs.IsNotFound(err) {
			return out, fmt.Errorf("build %s image: %w", rt, err)
		}
		if err := importImage(ctx, cli, tr, res.Image, rt, label(rt, cfg.Interpreters)); err != nil {
			return out, fmt.Errorf("build %s image: %w", rt, err)
		}
		res.Built = true
		res.Took = time.Since(t0)
		out = append(out, res)
	}
	return out, nil
}

// Tree is the file system of rt's image: image.Collect's tree, the
// interpreter also at /usr/local/bin/<its command> (the images' PATH comes
// first there), and base.
func Tree(ctx context.Context, rt string, in runtime.Interpreters) (*image.Tree, error) {
	t, err := image.Collect(ctx, rt, in)
	if err != nil {
		return nil, err
	}
	if r, ok := runtime.Lookup(rt); ok && r.Command != "" {
		t.Link("/usr/local/bin/"+r.Command, in.Path(rt))
	}
	if err := base(ctx, t); err != nil {
		return nil, err
	}
	return t, nil
}

// base adds what every image has: the driver's mount points, /bin/sh,
// users, CA certificates.
func base(ctx context.Context, t *image.Tree) error {
	for _, d := range []string{"/etc", "/tmp", "/usr/local/bin", docker.WorkDir, "/var/runtime", "/var/nimbus", "/proc", "/sys", "/dev"} {
		t.Mkdir(d)
	}
	t.Chmod("/tmp", 0o1777)
	t.Gen("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
	t.Gen("/etc/group", "root:x:0:\nnogroup:x:65534:\n")
	t.Gen("/etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n")
	// The containers' entrypoint opens the protocol's FIFOs with /bin/sh.
	if err := t.Add("/bin/sh"); err != nil {
		return err
	}
	if sh, err := filepath.EvalSymlinks("/bin/sh"); err == nil {
		if err := t.AddLibs(ctx, sh); err != nil {
			return err
		}
	}
	if _, err := os.Stat("/etc/ssl/certs/ca-certificates.crt"); err == nil {
		_ = t.Add("/etc/ssl/certs/ca-certificates.crt")
	}
	return nil
}

// tag is the image's tag: a hash of what goes in.
func tag(t *image.Tree, rt string) string {
	return t.Hash("nimbus runtime image " + layoutVersion + "\n" + rt)[:12]
}

func label(rt string, in runtime.Interpreters) string {
	if v := in.Version(rt); v != "" {
		return rt + " " + v
	}
	return rt
}

// importImage streams the tree to the daemon as image ref.
func importImage(ctx context.Context, cli *client.Client, t *image.Tree, ref, rt, label string) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(t.WriteTar(pw)) }()
	resp, err := cli.ImageImport(ctx, client.ImageImportSource{Source: pr, SourceName: "-"}, ref, client.ImageImportOptions{
		Message: "nimbus images build: " + label + " from this host",
		Changes: []string{
			"ENV PATH=/usr/local/bin:/usr/bin:/bin",
			"LABEL io.nimbus.runtime=" + rt,
			"USER 65534:65534",
			"WORKDIR " + docker.WorkDir,
			`CMD ["/bin/sh"]`,
		},
	})
	if err != nil {
		pr.CloseWithError(err)
		return err
	}
	defer resp.Close()
	dec := json.NewDecoder(resp)
	for {
		var m struct {
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if m.ErrorDetail != nil {
			return errors.New(m.ErrorDetail.Message)
		}
		if m.Error != "" {
			return errors.New(m.Error)
		}
	}
}
