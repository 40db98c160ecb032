package cli

import "testing"

// A setting of the spec is the server's when the server holds it, maybe
// normalised or with defaults added; env is compared whole.
func TestSameSetting(t *testing.T) {
	for _, tc := range []struct {
		key, want, have string
		same            bool
	}{
		{"runtime", `"python3"`, `"python"`, true},
		{"runtime", `"nodejs"`, `"python"`, false},
		{"driver", `"firecracker"`, `"microvm"`, true},
		{"memory", `128`, `128`, true},
		{"memory", `128`, `256`, false},
		{"url", `{"enabled":true}`, `{"enabled":true,"auth":"none"}`, true},
		{"url", `{"enabled":true,"auth":"key"}`, `{"enabled":true,"auth":"none"}`, false},
		{"url", `null`, ``, true},
		{"url", `null`, `{"enabled":true}`, false},
		{"layers", `[]`, ``, true},
		{"schedules", `[{"name":"h","rate":"1h"}]`, `[{"name":"h","rate":"1h","enabled":true,"nextRun":"2026-01-01T00:00:00Z"}]`, true},
		{"schedules", `[]`, `[{"name":"h","rate":"1h"}]`, false},
		{"network", `false`, `false`, true},
		{"env", `{}`, `{}`, true},
		{"env", `{"A":"1"}`, `{"A":"1","B":"2"}`, false}, // B was removed from the spec
		{"env", `{"A":"1"}`, `{"A":"2"}`, false},
	} {
		if got := sameSetting(tc.key, []byte(tc.want), []byte(tc.have)); got != tc.same {
			t.Errorf("sameSetting(%s, %s, %s) = %v, want %v", tc.key, tc.want, tc.have, got, tc.same)
		}
	}
}
