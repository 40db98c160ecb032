// Package cli_test runs the real nimbus binary as a user's terminal or CI
// job would: its client commands (deploy, invoke, fn, executions,
// execution, context, completion, init) against a real `nimbus serve`
// with the real python3 and node, and every command's --help against
// golden files (go test ./test/cli -run TestHelp -update rewrites them).
package cli
