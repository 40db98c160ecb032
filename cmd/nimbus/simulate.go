package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/nimbusfaas/nimbus/internal/autoscale"
)

// simulateCmd replays the synthetic traces under a fixed keep-alive and under
// the adaptive (hybrid) policy, and prints the comparison.
func simulateCmd(args []string) error {
	fs := withUsage(flag.NewFlagSet("simulate", flag.ContinueOnError), `usage: nimbus simulate [flags]

Replays synthetic traces under a fixed keep-alive and under the adaptive
(hybrid) policy, and prints how many cold starts and how much idle memory
each costs.
`)
	days := fs.Int("days", 7, "length of each synthetic trace, in simulated days")
	seed := fs.Uint64("seed", 1, "seed of the traces' random generators")
	mem := fs.Float64("memory", 128, "memory of one instance, in MB")
	fixed := fs.Duration("fixed", 10*time.Minute, "the fixed keep-alive to compare with (also the hybrid policy's fallback)")
	out := fs.String("json", "", "also write the results as JSON to this file")
	if err := parseFlags(fs, args, os.Stdout); err != nil {
		return err
	}
	if *days < 1 || *mem <= 0 || *fixed < 0 {
		return fmt.Errorf("simulate: --days and --memory must be positive, --fixed not negative")
	}
	traces := autoscale.Traces(*days, *seed)
	rep := autoscale.Compare(traces, autoscale.Config{Fixed: *fixed}, *fixed, *mem)
	rep.Days, rep.Seed = *days, *seed
	fmt.Printf("nimbus simulate: %d days, seed %d, %g MB per instance, fixed keep-alive %s against the hybrid policy\n\n", *days, *seed, *mem, *fixed)
	for _, tr := range traces {
		fmt.Printf("- %s: %s\n", tr.Name, tr.About)
	}
	fmt.Println()
	rep.WriteTable(os.Stdout)
	if *out != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}
