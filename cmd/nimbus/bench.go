package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nimbusfaas/nimbus/internal/bench"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// benchOptions are the flags of nimbus bench.
type benchOptions struct {
	url, findLinks, conc, out, cpuprofile string
	pid, colds, deploys                   int
	dur                                   time.Duration
	only                                  []string
}

// benchCmd runs the benchmark against a URL, or against a Nimbus it starts
// in this process with a fresh data directory.
func benchCmd() *cobra.Command {
	o := &benchOptions{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "measure latency, cold starts, throughput, memory and deploys",
		Long: `Measures warm-call latency, cold starts, throughput, calls through a
function URL, Invoke through the Lambda API, async calls (accepted
calls/s, time to the 202, end-to-end throughput), idle memory, deploys
with cached dependencies and cold starts with a 20 MB layer, against --url
or against a Nimbus it starts in this process with a fresh data directory,
and prints a table. Against --url, the deploy scenario runs only with
--pip-find-links.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return runBench(o) },
	}
	fs := cmd.Flags()
	fs.StringVar(&o.url, "url", "", "measure the Nimbus at this URL instead of starting one")
	fs.IntVar(&o.pid, "pid", 0, "with --url: the server's pid, to measure its workers' memory")
	fs.DurationVar(&o.dur, "duration", 3*time.Second, "length of each latency and throughput measurement")
	fs.IntVar(&o.colds, "colds", 10, "cold starts measured per runtime, and with and without a layer")
	fs.IntVar(&o.deploys, "deploys", 10, "deploys measured with cached dependencies, and without")
	fs.StringVar(&o.findLinks, "pip-find-links", "", "with --url: the directory of wheels the server's NIMBUS_PIP_FIND_LINKS names, writable here (the deploy scenario writes its wheel there)")
	fs.StringVar(&o.conc, "concurrency", "1,16,64", "throughput concurrencies")
	fs.StringVar(&o.out, "json", "", "also write the results as JSON to this file")
	fs.StringSliceVar(&o.only, "only", nil, "run only these scenarios: "+strings.Join(bench.Steps(), ", "))
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of this process (the server it starts, and the load) to this file")
	return cmd
}

func runBench(o *benchOptions) error {
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx := context.Background()
	cfg := bench.Config{URL: o.url, ServerPID: o.pid, Duration: o.dur, Colds: o.colds, Deploys: o.deploys, PipFindLinks: o.findLinks,
		Log: os.Stderr, APIKey: os.Getenv("NIMBUS_API_KEY"), Only: o.only}
	for _, name := range o.only {
		if !slices.Contains(bench.Steps(), name) {
			return fmt.Errorf("--only: no scenario %q (there are %s)", name, strings.Join(bench.Steps(), ", "))
		}
	}
	for _, c := range strings.Split(o.conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 {
			return fmt.Errorf("--concurrency: %q is not a positive number", c)
		}
		cfg.Concurrency = append(cfg.Concurrency, n)
	}
	in, _ := runtime.FindInterpreters(ctx, os.LookupEnv)
	cfg.Interpreters = in
	if cfg.URL == "" {
		stop, local, err := bench.StartLocal(ctx)
		if err != nil {
			return err
		}
		defer stop()
		cfg.URL, cfg.PipFindLinks, cfg.ServerPID, cfg.APIKey = local.URL, local.PipFindLinks, os.Getpid(), ""
	}
	fmt.Fprintf(os.Stderr, "nimbus bench: %s, %d CPUs, %s per measurement\n", cfg.URL, bench.NumCPU(), cfg.Duration)
	rep, err := bench.Run(ctx, cfg)
	if rep != nil {
		rep.WriteTable(os.Stdout)
		if o.out != "" {
			b, _ := json.MarshalIndent(rep, "", "  ")
			if werr := os.WriteFile(o.out, append(b, '\n'), 0o644); werr != nil {
				return werr
			}
		}
	}
	return err
}
