package cli_test

import (
	"os"
	"strings"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/cli"
)

// Colours only on a terminal (a character device), never with NO_COLOR
// or TERM=dumb.
func TestUseColour(t *testing.T) {
	dev, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0) // a character device, as a terminal is
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	env := func(kv ...string) func(string) (string, bool) {
		return func(k string) (string, bool) {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1], true
				}
			}
			return "", false
		}
	}
	for _, tc := range []struct {
		name string
		f    *os.File
		env  func(string) (string, bool)
		want bool
	}{
		{"terminal", dev, env(), true},
		{"pipe", w, env(), false},
		{"NO_COLOR", dev, env("NO_COLOR", "1"), false},
		{"empty NO_COLOR", dev, env("NO_COLOR", ""), true},
		{"dumb terminal", dev, env("TERM", "dumb"), false},
	} {
		if got := cli.UseColour(tc.f, tc.env); got != tc.want {
			t.Errorf("%s: UseColour = %v, want %v", tc.name, got, tc.want)
		}
	}
	if s := (cli.Painter{On: false}).Paint("x", "red"); s != "x" {
		t.Errorf("a painter that is off painted: %q", s)
	}
	if s := (cli.Painter{On: true}).Paint("x", "red"); !strings.Contains(s, "\x1b[31m") {
		t.Errorf("a painter that is on did not: %q", s)
	}
}

func TestWriteRaw(t *testing.T) {
	var b strings.Builder
	if err := cli.WriteRaw(&b, cli.FormatYAML, []byte(`{"name":"a","n":1,"list":[{"x":"y: z"}],"empty":{}}`)); err != nil {
		t.Fatal(err)
	}
	want := "name: a\nn: 1\nlist:\n  - x: 'y: z'\nempty: {}\n"
	if b.String() != want {
		t.Errorf("yaml:\n%s\nwant:\n%s", b.String(), want)
	}
	if err := cli.WriteRaw(&b, "xml", []byte(`{}`)); err == nil {
		t.Error("an unknown format is no error")
	}
}
