package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/nimbusfaas/nimbus/internal/config"
	"github.com/nimbusfaas/nimbus/internal/driver/docker"
	dockerbuild "github.com/nimbusfaas/nimbus/internal/driver/docker/build"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// imagesCmd is `nimbus images build`.
func imagesCmd() *cobra.Command {
	images := &cobra.Command{
		Use:   "images",
		Short: "build the docker driver's runtime images",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usage(errors.New("images: want the subcommand build"))
		},
	}
	var rt string
	var force bool
	build := &cobra.Command{
		Use:   "build",
		Short: "build the docker driver's runtime images from this host's interpreters",
		Long: `Builds the docker driver's runtime images (nimbus/runtime-python:<hash>,
nimbus/runtime-nodejs:<hash>) from this host's interpreters, with no
network: the interpreter, the libraries it loads and its standard library,
imported through the Docker Engine API. An image whose content tag exists is
not built again. The daemon is DOCKER_HOST's, or the default socket.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return imagesBuild(rt, force) },
	}
	build.Flags().StringVar(&rt, "runtime", "", "build only this runtime's image: "+strings.Join(runtime.Names(), " or "))
	build.Flags().BoolVar(&force, "force", false, "build even when an image with the same content tag exists")
	images.AddCommand(build)
	return images
}

func imagesBuild(rt string, force bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	var rts []string
	if rt != "" {
		r, err := fn.CanonicalRuntime(rt)
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
		for _, r := range runtime.All() {
			if in.Path(r.Name) != "" || r.Relayed() { // the relay is this binary
				rts = append(rts, r.Name)
			}
		}
	}
	host, _ := cfg.Lookup(docker.EnvHost)
	res, err := dockerbuild.Build(ctx, dockerbuild.Config{Host: host, Interpreters: in, Runtimes: rts, Force: force})
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
