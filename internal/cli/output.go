package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// Output formats of the read commands.
const (
	FormatTable = "table"
	FormatJSON  = "json"
	FormatYAML  = "yaml"
)

// Formats are the values -o takes.
var Formats = []string{FormatTable, FormatJSON, FormatYAML}

// CheckFormat refuses a format that is not one of Formats.
func CheckFormat(f string) error {
	for _, ok := range Formats {
		if f == ok {
			return nil
		}
	}
	return fmt.Errorf("unknown output format %q (want %s)", f, strings.Join(Formats, ", "))
}

// WriteRaw writes the API's JSON reply in format json (indented) or yaml
// (the same document, keys in the same order).
func WriteRaw(w io.Writer, format string, raw []byte) error {
	switch format {
	case FormatJSON:
		var buf bytes.Buffer
		if err := json.Indent(&buf, raw, "", "  "); err != nil {
			return err
		}
		buf.WriteByte('\n')
		_, err := buf.WriteTo(w)
		return err
	case FormatYAML:
		var node yaml.Node
		if err := yaml.Unmarshal(raw, &node); err != nil {
			return err
		}
		blockStyle(&node)
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		if err := enc.Encode(&node); err != nil {
			return err
		}
		return enc.Close()
	}
	return CheckFormat(format)
}

// blockStyle makes a document parsed from JSON print as block YAML.
func blockStyle(n *yaml.Node) {
	if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		n.Style = 0
	}
	if n.Kind == yaml.ScalarNode && n.Style == yaml.DoubleQuotedStyle {
		n.Style = 0 // quoted again by the encoder only where YAML needs it
	}
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// Painter colours text for a terminal, or leaves it alone.
type Painter struct{ On bool }

var colours = map[string]string{"red": "31", "green": "32", "yellow": "33", "dim": "2", "bold": "1"}

// Paint wraps s in the colour's escape codes when p is on.
func (p Painter) Paint(s, colour string) string {
	code, ok := colours[colour]
	if !p.On || !ok {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// UseColour reports whether output to f may be coloured: f is a terminal,
// NO_COLOR is unset or empty (no-color.org) and TERM is not "dumb".
func UseColour(f *os.File, lookup func(string) (string, bool)) bool {
	if v, _ := lookup("NO_COLOR"); v != "" {
		return false
	}
	if v, _ := lookup("TERM"); v == "dumb" {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// StatusColour is the colour of an execution status.
func StatusColour(s fn.Status) string {
	switch s {
	case fn.StatusSuccess:
		return "green"
	case fn.StatusQueued, fn.StatusRunning:
		return "yellow"
	}
	return "red"
}

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

func timestamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// WriteFunctions writes functions as a table.
func WriteFunctions(w io.Writer, fns []*fn.Function) error {
	tw := table(w)
	fmt.Fprintln(tw, "NAME\tRUNTIME\tDRIVER\tMEMORY\tTIMEOUT\tREVISION\tURL\tUPDATED")
	for _, f := range fns {
		url := "-"
		if f.URL != nil && f.URL.Enabled {
			url = "/fn/" + f.Name
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%dMB\t%dms\t%d\t%s\t%s\n", f.Name, f.Runtime, f.Driver, f.Memory, f.Timeout, f.Revision, url, timestamp(f.UpdatedAt))
	}
	return tw.Flush()
}

// WriteFunction writes one function's settings and code, one a line.
func WriteFunction(w io.Writer, f *fn.Function) error {
	tw := table(w)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s:\t%v\n", k, v) }
	row("Name", f.Name)
	row("ID", f.ID)
	row("Runtime", f.Runtime)
	row("Handler", f.Handler)
	row("Driver", f.Driver)
	row("Memory", fmt.Sprintf("%d MB", f.Memory))
	row("Timeout", fmt.Sprintf("%d ms", f.Timeout))
	row("Scaling", fmt.Sprintf("min %d, max %d, concurrency %d, keep-alive %d ms", f.MinInstances, f.MaxInstances, f.Concurrency, f.KeepAlive))
	row("Network", f.Network)
	if f.URL != nil && f.URL.Enabled {
		row("URL", "/fn/"+f.Name+" (auth "+orDash(f.URL.Auth)+")")
	}
	if len(f.Env) > 0 {
		row("Env", strings.Join(slices.Sorted(maps.Keys(f.Env)), ", "))
	}
	if len(f.SecretEnv) > 0 {
		refs := make([]string, 0, len(f.SecretEnv))
		for _, k := range slices.Sorted(maps.Keys(f.SecretEnv)) {
			refs = append(refs, k+" (secret "+f.SecretEnv[k]+")")
		}
		row("Secret env", strings.Join(refs, ", "))
	}
	if len(f.Layers) > 0 {
		row("Layers", strings.Join(f.Layers, ", "))
	}
	for _, s := range f.Schedules {
		row("Schedule", s.Name+" "+s.Cron+s.Rate)
	}
	row("Revision", f.Revision)
	row("Updated", timestamp(f.UpdatedAt))
	if ci := f.CodeInfo; ci != nil {
		row("Code", fmt.Sprintf("%d files, %d bytes, sha256 %s", len(ci.Files), ci.UnpackedSize, ci.SHA256))
	}
	if bs := f.BuildStatus; bs != nil {
		row("Build", bs.State+orEmpty(" ", bs.Error))
	}
	return tw.Flush()
}

// WriteExecutions writes executions as a table.
func WriteExecutions(w io.Writer, execs []*fn.Execution, p Painter) error {
	tw := table(w)
	fmt.Fprintln(tw, "ID\tSTATUS\tSTARTED\tDURATION\tCOLD\tTRIGGER")
	for _, e := range execs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1fms\t%v\t%s\n", e.ID, p.Paint(string(e.Status), StatusColour(e.Status)), timestamp(e.StartedAt), e.DurationMs, e.ColdStart, orDash(e.Trigger))
	}
	return tw.Flush()
}

// WriteExecution writes one execution in full: its fields, event, result
// or error, and logs.
func WriteExecution(w io.Writer, e *fn.Execution, p Painter) error {
	tw := table(w)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s:\t%v\n", k, v) }
	row("ID", e.ID)
	row("Status", p.Paint(string(e.Status), StatusColour(e.Status)))
	row("Version", e.VersionName())
	row("Started", timestamp(e.StartedAt))
	row("Duration", fmt.Sprintf("%.1f ms", e.DurationMs))
	row("Cold start", e.ColdStart)
	if e.Trigger != "" {
		row("Trigger", e.Trigger)
	}
	if e.Attempt > 0 {
		row("Attempt", e.Attempt)
	}
	if e.PeakMemoryKiB > 0 {
		row("Peak memory", fmt.Sprintf("%d KiB", e.PeakMemoryKiB))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	section := func(title, body string) {
		if body == "" {
			return
		}
		fmt.Fprintf(w, "\n%s:\n%s", p.Paint(title, "bold"), body)
		if !strings.HasSuffix(body, "\n") {
			fmt.Fprintln(w)
		}
	}
	section("Event", string(e.Event))
	section("Result", string(e.Result))
	if e.Error != nil {
		section("Error", strings.TrimPrefix(e.Error.Type+": ", ": ")+e.Error.Message+"\n"+e.Error.Stack)
	}
	section("Logs", e.Logs)
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func orEmpty(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}
