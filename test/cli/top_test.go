package cli_test

import (
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/testenv"
)

// On a terminal (a pseudo-terminal from script(1)) top takes the
// alternate screen, draws the functions, redraws, and quits on q,
// leaving the terminal as it found it.
func TestTopOnATerminal(t *testing.T) {
	scriptPath, err := exec.LookPath("script")
	testenv.Require(t, "script(1) from util-linux, for a pseudo-terminal", err)
	s := startServer(t)
	c := deployEcho(t, s)
	c.ok("invoke", "echo")

	cmd := exec.Command(scriptPath, "-qefc", binary+" top --url "+s.url, "/dev/null")
	cmd.Dir, cmd.Env = c.dir, append(c.env, "TERM=xterm")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	b := &background{done: make(chan struct{}), description: "nimbus top (on a pty)", cmd: cmd}
	cmd.Stdout, cmd.Stderr = &b.stdout, &b.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { b.err = cmd.Wait(); close(b.done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-b.done })

	// Two screens: the first draw, and a redraw at a snapshot.
	b.waitFor(t, "two screens with echo's row", func() bool {
		out := b.stdout.String()
		return strings.Count(out, "\x1b[H\x1b[2J") >= 2 && strings.Contains(out, "echo") && strings.Contains(out, "q: quit")
	})
	if out := b.stdout.String(); !strings.Contains(out, "\x1b[?1049h") {
		t.Fatalf("no alternate screen: %q", out)
	}
	io.WriteString(stdin, "q")
	b.waitFor(t, "its exit on q", b.exited)
	if b.err != nil {
		t.Fatalf("top on q: %v\n%q", b.err, b.stdout.String())
	}
	if out := b.stdout.String(); !strings.HasSuffix(strings.TrimRight(out, "\r\n"), "\x1b[?25h\x1b[?1049l") {
		t.Fatalf("the screen was not restored: %q", out[max(0, len(out)-80):])
	}
}
