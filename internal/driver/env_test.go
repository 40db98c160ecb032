package driver_test

import (
	"testing"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/fn"
)

// A secret reference's revealed value reaches the environment; a value
// in Secrets for a variable that is not a reference does not, nor does a
// reference without a revealed value.
func TestFunctionEnvAddsRevealedSecrets(t *testing.T) {
	f := &fn.Function{
		ID: "0123456789abcdef01234567", Name: "db", Memory: 128,
		Env:       map[string]string{"MODE": "prod"},
		SecretEnv: map[string]string{"DB_PASSWORD": "db-password", "UNREVEALED": "other"},
		Secrets:   map[string]string{"DB_PASSWORD": "hunter2", "SMUGGLED": "x", "MODE": "overridden"},
	}
	env := driver.FunctionEnv(f, "/var/task")
	for k, want := range map[string]string{"MODE": "prod", "DB_PASSWORD": "hunter2"} {
		if env[k] != want {
			t.Errorf("%s=%q, want %q", k, env[k], want)
		}
	}
	for _, k := range []string{"SMUGGLED", "UNREVEALED"} {
		if v, ok := env[k]; ok {
			t.Errorf("%s=%q is in the environment", k, v)
		}
	}
}
