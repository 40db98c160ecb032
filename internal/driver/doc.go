// Package driver defines how the engine starts and talks to function
// instances, whatever isolates them: the Driver and Instance interfaces, the
// registry drivers join by name, and Conn, the framed runtime protocol over a
// pair of byte streams that every driver shares. A driver knows nothing of
// HTTP, the store or pools.
//
// What every driver's instance shares lives here, once:
//   - Base (base.go) is the instance lifecycle: the Conn, the load's logs,
//     the first kill reason, Done/Exit, Invoke, Load and FailStart. A
//     driver embeds a *Base, gives NewBase how to kill its worker, calls
//     Exited with how it ended, and adds Stats.
//   - FunctionEnv (env.go) is a worker's environment, on runtime.BaseEnv.
//   - ResidentKiB and ChildPIDs (proc.go) read /proc; IsClosed checks a
//     channel; Discard is the logger of a driver given none.
//
// Optional capabilities (Closer, ProtectionReporter, DetailReporter) are
// named interfaces in driver.go, guarded at compile time beside each
// driver that has them; Availability is the one text of whether a driver
// can run functions now.
package driver
