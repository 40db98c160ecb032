package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/nimbusfaas/nimbus/internal/config"
	"github.com/nimbusfaas/nimbus/internal/driver/microvm"
	microvmbuild "github.com/nimbusfaas/nimbus/internal/driver/microvm/build"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

const microvmUsage = `usage:
  nimbus microvm build [--dir DIR] [--data-dir DIR]

build makes what the microvm driver boots: a kernel and an initramfs from
Debian's linux-image-amd64 and busybox-static packages (fetched with apt-get),
and a squashfs image per runtime holding this host's python3 and node.
Artifacts are named by a hash of their inputs and rebuilt only when those
change. DIR defaults to $NIMBUS_MICROVM_DIR, else ~/.cache/nimbus/microvm.
`

// microvmCmd runs `nimbus microvm SUBCOMMAND`.
func microvmCmd(args []string) error {
	if len(args) > 0 && isHelp(args[0]) {
		fmt.Print(microvmUsage)
		return flag.ErrHelp
	}
	if len(args) == 0 || args[0] != "build" {
		fmt.Fprint(os.Stderr, microvmUsage)
		return fmt.Errorf("microvm: want a subcommand: build")
	}
	fs := withUsage(flag.NewFlagSet("microvm build", flag.ContinueOnError), microvmUsage)
	dir := fs.String("dir", "", "artifacts directory (default $NIMBUS_MICROVM_DIR, else ~/.cache/nimbus/microvm)")
	dataDir := fs.String("data-dir", "", "data directory, used when there is no cache directory")
	if err := parseFlags(fs, args[1:], os.Stdout); err != nil {
		return err
	}
	cfg, err := config.Load(os.LookupEnv, ".env", nil)
	if err != nil {
		return err
	}
	if *dataDir != "" {
		cfg.DataDir = *dataDir
	}
	if *dir == "" {
		*dir = microvm.DefaultDir(os.LookupEnv, cfg.DataDir)
	}
	ctx := context.Background()
	in, errs := runtime.FindInterpreters(ctx, os.LookupEnv)
	for _, err := range errs {
		fmt.Fprintln(os.Stderr, "nimbus microvm build:", err)
	}
	fmt.Fprintf(os.Stderr, "nimbus microvm build: artifacts in %s\n", *dir)
	_, err = microvmbuild.Build(ctx, microvmbuild.Options{
		Dir:          *dir,
		Interpreters: in,
		Progress: func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "  "+format+"\n", args...)
		},
	})
	return err
}
