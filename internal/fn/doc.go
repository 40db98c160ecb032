// Package fn holds Nimbus's domain types: functions, executions and their
// statuses, the limits that apply to them, validation, and the sentinel
// errors every other package wraps. It imports nothing of ours and knows
// nothing of HTTP, storage or processes.
package fn
