package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/nimbusfaas/nimbus/internal/config"
	"github.com/nimbusfaas/nimbus/internal/driver/microvm"
	microvmbuild "github.com/nimbusfaas/nimbus/internal/driver/microvm/build"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// microvmCmd is `nimbus microvm build`.
func microvmCmd() *cobra.Command {
	microvm := &cobra.Command{
		Use:   "microvm",
		Short: "build what the microvm driver boots",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usage(errors.New("microvm: want a subcommand: build"))
		},
	}
	var dir, dataDir string
	build := &cobra.Command{
		Use:   "build",
		Short: "build the microvm kernel, initramfs and runtime images",
		Long: `build makes what the microvm driver boots: a kernel and an initramfs from
Debian's linux-image-amd64 and busybox-static packages (fetched with apt-get),
and a squashfs image per runtime holding this host's python3 and node.
Artifacts are named by a hash of their inputs and rebuilt only when those
change. DIR defaults to $NIMBUS_MICROVM_DIR, else ~/.cache/nimbus/microvm.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return microvmBuild(dir, dataDir) },
	}
	build.Flags().StringVar(&dir, "dir", "", "artifacts directory (default $NIMBUS_MICROVM_DIR, else ~/.cache/nimbus/microvm)")
	build.Flags().StringVar(&dataDir, "data-dir", "", "data directory, used when there is no cache directory")
	microvm.AddCommand(build)
	return microvm
}

func microvmBuild(dir, dataDir string) error {
	cfg, err := config.Load(os.LookupEnv, ".env", nil)
	if err != nil {
		return err
	}
	if dataDir != "" {
		cfg.DataDir = dataDir
	}
	if dir == "" {
		dir = microvm.DefaultDir(os.LookupEnv, cfg.DataDir)
	}
	ctx := context.Background()
	in, errs := runtime.FindInterpreters(ctx, os.LookupEnv)
	for _, err := range errs {
		fmt.Fprintln(os.Stderr, "nimbus microvm build:", err)
	}
	fmt.Fprintf(os.Stderr, "nimbus microvm build: artifacts in %s\n", dir)
	_, err = microvmbuild.Build(ctx, microvmbuild.Options{
		Dir:          dir,
		Interpreters: in,
		Progress: func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "  "+format+"\n", args...)
		},
	})
	return err
}
