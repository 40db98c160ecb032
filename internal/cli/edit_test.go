package cli_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/cli"
)

const functionJSON = `{"id":"18ed","name":"hello","runtime":"python","handler":"main.handler","memory":128,
"timeout":3000,"env":{"A":"1"},"layers":[],"revision":4,"codeInfo":{"sha256":"x"},"url":null}`

func TestEditDocumentAndPatch(t *testing.T) {
	doc, before, err := cli.EditDocument([]byte(functionJSON))
	if err != nil {
		t.Fatal(err)
	}
	s := string(doc)
	if !strings.HasPrefix(s, "# The settings of function hello (revision 4)") {
		t.Errorf("no header:\n%s", s)
	}
	for _, lack := range []string{"id:", "codeInfo", "revision:", "name:"} {
		if strings.Contains(s, "\n"+lack) {
			t.Errorf("the document shows %s:\n%s", lack, s)
		}
	}
	if i, j := strings.Index(s, "runtime:"), strings.Index(s, "memory:"); i < 0 || j < i {
		t.Errorf("fields not in the spec's order:\n%s", s)
	}
	for _, tc := range []struct {
		name   string
		edit   func(string) string
		want   map[string]any
		errHas string
	}{
		{"unchanged but for a comment", func(s string) string { return s + "# a note\n" }, map[string]any{}, ""},
		{"a number", func(s string) string { return strings.Replace(s, "memory: 128", "memory: 256", 1) }, map[string]any{"memory": float64(256)}, ""},
		{"env removed", func(s string) string { return strings.Replace(s, "env:\n  A: \"1\"\n", "", 1) }, map[string]any{"env": map[string]any{}}, ""},
		{"an unknown field", func(s string) string { return s + "colour: blue\n" }, nil, "unknown field colour"},
		{"a wrong type", func(s string) string { return strings.Replace(s, "memory: 128", "memory: lots", 1) }, nil, "memory"},
		{"not YAML", func(string) string { return "memory: [" }, nil, "not YAML"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			edited := tc.edit(s)
			patch, err := cli.EditPatch(before, []byte(edited))
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("err %v, want one saying %q", err, tc.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(patch, tc.want) {
				t.Fatalf("patch %#v, want %#v", patch, tc.want)
			}
		})
	}
}
