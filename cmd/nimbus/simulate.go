package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/nimbusfaas/nimbus/internal/autoscale"
)

// simulateCmd replays the synthetic traces under a fixed keep-alive and under
// the adaptive (hybrid) policy, and prints the comparison.
func simulateCmd() *cobra.Command {
	var (
		days  int
		seed  uint64
		mem   float64
		fixed time.Duration
		out   string
	)
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "compare a fixed keep-alive with the adaptive policy on synthetic traces",
		Long: `Replays synthetic traces under a fixed keep-alive and under the adaptive
(hybrid) policy, and prints how many cold starts and how much idle memory
each costs.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return simulate(days, seed, mem, fixed, out) },
	}
	fs := cmd.Flags()
	fs.IntVar(&days, "days", 7, "length of each synthetic trace, in simulated days")
	fs.Uint64Var(&seed, "seed", 1, "seed of the traces' random generators")
	fs.Float64Var(&mem, "memory", 128, "memory of one instance, in MB")
	fs.DurationVar(&fixed, "fixed", 10*time.Minute, "the fixed keep-alive to compare with (also the hybrid policy's fallback)")
	fs.StringVar(&out, "json", "", "also write the results as JSON to this file")
	return cmd
}

func simulate(days int, seed uint64, mem float64, fixed time.Duration, out string) error {
	if days < 1 || mem <= 0 || fixed < 0 {
		return fmt.Errorf("simulate: --days and --memory must be positive, --fixed not negative")
	}
	traces := autoscale.Traces(days, seed)
	rep := autoscale.Compare(traces, autoscale.Config{Fixed: fixed}, fixed, mem)
	rep.Days, rep.Seed = days, seed
	fmt.Printf("nimbus simulate: %d days, seed %d, %g MB per instance, fixed keep-alive %s against the hybrid policy\n\n", days, seed, mem, fixed)
	for _, tr := range traces {
		fmt.Printf("- %s: %s\n", tr.Name, tr.About)
	}
	fmt.Println()
	rep.WriteTable(os.Stdout)
	if out != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}
