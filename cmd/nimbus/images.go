package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/nimbusfaas/nimbus/internal/config"
	"github.com/nimbusfaas/nimbus/internal/driver/docker"
	dockerbuild "github.com/nimbusfaas/nimbus/internal/driver/docker/build"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

const imagesUsage = `usage: nimbus images build [--runtime python|nodejs] [--force]

Builds the docker driver's runtime images (nimbus/runtime-python:<hash>,
nimbus/runtime-nodejs:<hash>) from this host's interpreters, with no
network: the interpreter, the libraries it loads and its standard library,
imported through the Docker Engine API. An image whose content tag exists is
not built again. The daemon is DOCKER_HOST's, or the default socket.
`

// images runs `nimbus images SUBCOMMAND`.
func images(args []string) error {
	if len(args) > 0 && isHelp(args[0]) {
		fmt.Print(imagesUsage)
		return flag.ErrHelp
	}
	if len(args) == 0 || args[0] != "build" {
		fmt.Fprint(os.Stderr, imagesUsage)
		return errors.New("images: want the subcommand build")
	}
	fs := withUsage(flag.NewFlagSet("images build", flag.ContinueOnError), imagesUsage)
	rt := fs.String("runtime", "", "build only this runtime's image: "+strings.Join(runtime.Names(), " or "))
	force := fs.Bool("force", false, "build even when an image with the same content tag exists")
	if err := parseFlags(fs, args[1:], os.Stdout); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	var rts []string
	if *rt != "" {
		r, err := fn.CanonicalRuntime(*rt)
		if err != nil {
			return err
		}
		rts = []string{r}
	}
	// The same settings as serve: the environment over .env.
	cfg, err := config.Load(os.LookupEnv, ".env", nil)
	if err != nil {
		return err
	}
	in, errs := runtime.FindInterpreters(ctx, cfg.Lookup)
	for _, err := range errs {
		fmt.Fprintln(os.Stderr, "nimbus: warning:", err)
	}
	if len(rts) == 0 {
		for _, rt := range runtime.Names() {
			if in.Path(rt) != "" {
				rts = append(rts, rt)
			}
		}
	}
	host, _ := cfg.Lookup(docker.EnvHost)
	res, err := dockerbuild.Build(ctx, dockerbuild.Config{Host: host, Interpreters: in, Runtimes: rts, Force: *force})
	for _, r := range res {
		what := "exists"
		if r.Built {
			what = "built"
		}
		fmt.Printf("%s\t%s\t%s (%d files, %d MB, %s)\n", r.Runtime, r.Image, what, r.Files, r.Bytes>>20, r.Took.Round(1e7))
	}
	if err != nil {
		return fmt.Errorf("images build: %w", err)
	}
	if len(res) == 0 {
		return fmt.Errorf("images build: no interpreter found (%s)", strings.Join(rts, ", "))
	}
	return nil
}
