package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/nimbusfaas/nimbus/internal/bench"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// benchCmd runs the benchmark against a URL, or against a Nimbus it starts
// in this process with a fresh data directory.
func benchCmd(args []string) error {
	fs := withUsage(flag.NewFlagSet("bench", flag.ContinueOnError), `usage: nimbus bench [flags]

Measures warm-call latency, cold starts, throughput, calls through a
function URL, async calls (accepted calls/s, time to the 202, end-to-end
throughput), idle memory, deploys with cached dependencies and cold
starts with a 20 MB layer, against --url
or against a Nimbus it starts in this process with a fresh data directory,
and prints a table. Against --url, the deploy scenario runs only with
--pip-find-links.
`)
	url := fs.String("url", "", "measure the Nimbus at this URL instead of starting one")
	pid := fs.Int("pid", 0, "with --url: the server's pid, to measure its workers' memory")
	dur := fs.Duration("duration", 3*time.Second, "length of each latency and throughput measurement")
	colds := fs.Int("colds", 10, "cold starts measured per runtime, and with and without a layer")
	deploys := fs.Int("deploys", 10, "deploys measured with cached dependencies, and without")
	findLinks := fs.String("pip-find-links", "", "with --url: the directory of wheels the server's NIMBUS_PIP_FIND_LINKS names, writable here (the deploy scenario writes its wheel there)")
	conc := fs.String("concurrency", "1,16,64", "throughput concurrencies")
	out := fs.String("json", "", "also write the results as JSON to this file")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of this process (the server it starts, and the load) to this file")
	if err := parseFlags(fs, args, os.Stdout); err != nil {
		return err
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
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
	cfg := bench.Config{URL: *url, ServerPID: *pid, Duration: *dur, Colds: *colds, Deploys: *deploys, PipFindLinks: *findLinks,
		Log: os.Stderr, APIKey: os.Getenv("NIMBUS_API_KEY")}
	for _, c := range strings.Split(*conc, ",") {
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
		if *out != "" {
			b, _ := json.MarshalIndent(rep, "", "  ")
			if werr := os.WriteFile(*out, append(b, '\n'), 0o644); werr != nil {
				return werr
			}
		}
	}
	return err
}
