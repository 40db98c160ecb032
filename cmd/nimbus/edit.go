package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/nimbusfaas/nimbus/internal/cli"
)

// editCmd is nimbus fn edit: the function's settings in $EDITOR, sent
// back only if changed, and only if the function did not change
// meanwhile (If-Match on the revision read).
func editCmd(g *globals, std stdio, conn *connFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "edit NAME",
		Short: "edit a function's settings in $EDITOR",
		Long: `Opens a function's settings as YAML in $VISUAL, else $EDITOR, else vi. When
the editor exits, what changed is sent, unless the function changed since
it was opened (then nothing is, and the edit is kept); a file left as it
was sends nothing. An edit that is not valid YAML, or that the server
refuses, is kept too: the error says where, to fix it and send it with
nimbus deploy, or to edit again.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := conn.client(std)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			raw, f, err := c.GetFunction(ctx, a[0])
			if err != nil {
				return err
			}
			doc, before, err := cli.EditDocument(raw)
			if err != nil {
				return err
			}
			tmp, err := os.CreateTemp("", "nimbus-edit-"+filepath.Base(f.Name)+"-*.yaml")
			if err != nil {
				return err
			}
			path := tmp.Name()
			_, err = tmp.Write(doc)
			if cerr := tmp.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				os.Remove(path)
				return err
			}
			kept := func(err error) error {
				return fmt.Errorf("%w\nyour edit is kept in %s", err, path)
			}
			if err := runEditor(std, path); err != nil {
				return kept(err)
			}
			edited, err := os.ReadFile(path)
			if err != nil {
				return kept(err)
			}
			if bytes.Equal(edited, doc) {
				os.Remove(path)
				g.say(std, "%s: no changes", f.Name)
				return nil
			}
			patch, err := cli.EditPatch(before, edited)
			if err != nil {
				return kept(fmt.Errorf("%s: %w", f.Name, err))
			}
			if len(patch) == 0 {
				os.Remove(path)
				g.say(std, "%s: no changes", f.Name)
				return nil
			}
			updated, err := c.UpdateFunctionAt(ctx, f.Name, f.Revision, patch)
			if err != nil {
				return kept(err)
			}
			os.Remove(path)
			g.say(std, "%s: updated to revision %d", updated.Name, updated.Revision)
			return nil
		},
	}
}

// runEditor runs the user's editor on path, on the terminal.
func runEditor(std stdio, path string) error {
	editor := "vi"
	for _, k := range []string{"VISUAL", "EDITOR"} {
		if v, ok := std.env(k); ok && v != "" {
			editor = v
			break
		}
	}
	// Through the shell, as git does: EDITOR may hold arguments.
	cmd := exec.Command("/bin/sh", "-c", editor+` "$@"`, editor, path)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = std.in, std.out, std.errOut
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("the editor (%s) exited with status %d: nothing sent", editor, ee.ExitCode())
		}
		return fmt.Errorf("run the editor (%s): %w", editor, err)
	}
	return nil
}
