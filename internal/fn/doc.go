// Package fn holds Nimbus's domain types: functions, executions and their
// statuses, the limits that apply to them, validation, and the sentinel
// errors every other package wraps. It knows nothing of HTTP, storage or
// processes. Of ours it imports only package runtime, a leaf: its table
// says which runtimes exist, how users spell them, their default handlers
// and where a handler's module lives, which validation needs.
package fn
