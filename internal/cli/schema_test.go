package cli

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// The published schema of nimbus.yaml names the fields ParseSpec takes,
// each of which is a field of the API's function (code aside).
func TestSchemaMatchesTheSpec(t *testing.T) {
	b, err := os.ReadFile("../../docs/nimbus.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Defs struct {
			Function struct {
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"function"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatalf("docs/nimbus.schema.json: %v", err)
	}
	var inSchema []string
	for k := range schema.Defs.Function.Properties {
		inSchema = append(inSchema, k)
	}
	slices.Sort(inSchema)
	want := slices.Sorted(slices.Values(specFields))
	if !slices.Equal(inSchema, want) {
		t.Errorf("schema fields %v, spec fields %v", inSchema, want)
	}
	api := map[string]bool{}
	ft := reflect.TypeFor[fn.Function]()
	for i := range ft.NumField() {
		name, _, _ := strings.Cut(ft.Field(i).Tag.Get("json"), ",")
		api[name] = true
	}
	for _, f := range specFields {
		if !api[f] {
			t.Errorf("spec field %s is not a field of the API's function", f)
		}
	}
}
