package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/nimbusfaas/nimbus/internal/cli"
)

func metricsCmd(g *globals, std stdio) *cobra.Command {
	var conn connFlags
	var format string
	var window time.Duration
	cmd := &cobra.Command{
		Use:   "metrics [NAME]",
		Short: "show a function's or the server's figures, with sparklines",
		Long: `Shows a function's figures over --window (calls, errors, latency
percentiles, cold starts, instances) and sparklines of its calls, errors and
p95 latency across the window, about 60 steps. Without NAME it shows the
server's, then a line per function, busiest first, with a sparkline of its
calls.

-o json prints the API's JSON: GET /api/metrics/functions/NAME?series=true,
or without NAME {"system": GET /api/metrics/system?series=true, "functions":
[each function's]}.`,
		Example: `  nimbus metrics hello --window 1h
  nimbus metrics -o json`,
		Args: args(maxArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			if window < time.Second {
				return usage(errors.New("--window: want a duration such as 15m or 1h"))
			}
			c, err := conn.client(std)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			p := g.painter(std)
			if len(a) == 1 {
				raw, m, err := c.FunctionMetrics(ctx, a[0], window, true)
				if err != nil {
					return fmt.Errorf("%s: %w", a[0], err)
				}
				if format != cli.FormatTable {
					return cli.WriteRaw(std.out, format, raw)
				}
				return cli.WriteMetrics(std.out, m.Name, m, p)
			}
			raw, sys, rows, err := overview(ctx, c, window, true)
			if err != nil {
				return err
			}
			if format != cli.FormatTable {
				return cli.WriteRaw(std.out, format, raw)
			}
			if err := cli.WriteMetrics(std.out, "System", sys, p); err != nil {
				return err
			}
			fmt.Fprintln(std.out)
			return cli.WriteFunctionRows(std.out, rows, p)
		},
	}
	conn.add(cmd.Flags())
	formatFlag(cmd, &format)
	cmd.Flags().DurationVar(&window, "window", 15*time.Minute, "the window the figures cover (1s to 24h)")
	return cmd
}

// overview reads the server's metrics over window (with its series when
// systemSeries) and every function's, with their series; raw is both as
// one JSON object, {"system", "functions"}.
func overview(ctx context.Context, c *cli.Client, window time.Duration, systemSeries bool) (raw []byte, sys *cli.Metrics, rows []cli.FunctionRow, err error) {
	rawSys, sys, err := c.SystemMetrics(ctx, window, systemSeries)
	if err != nil {
		return nil, nil, nil, err
	}
	raws, rows, err := c.FunctionsMetrics(ctx, window, true)
	if err != nil {
		return nil, nil, nil, err
	}
	raw, err = json.Marshal(map[string]any{"system": json.RawMessage(rawSys), "functions": raws})
	return raw, sys, rows, err
}
