package driver

import (
	"strconv"
	"strings"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// FunctionEnv is the whole environment of f's worker: the runtime's base
// (runtime.BaseEnv), the documented variables that name the function, and
// the function's own, which win: its plain variables, then the revealed
// values (f.Secrets) of its secret references (f.SecretEnv), those only.
// Never the server's. taskDir is where the worker sees the function's
// code.
func FunctionEnv(f *fn.Function, taskDir string) map[string]string {
	env := map[string]string{}
	for _, kv := range runtime.BaseEnv(taskDir) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	env["AWS_LAMBDA_FUNCTION_NAME"] = f.Name
	env["AWS_LAMBDA_FUNCTION_VERSION"] = f.VersionName()
	env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = strconv.Itoa(f.Memory)
	env["NIMBUS_FUNCTION_ID"] = f.ID
	for k, v := range f.Env {
		env[k] = v
	}
	for k := range f.SecretEnv {
		if v, ok := f.Secrets[k]; ok {
			env[k] = v
		}
	}
	return env
}
