// Package sandbox is the default driver: each instance is a long-lived
// interpreter process isolated by the kernel, with no daemon.
//
// The server re-executes its own binary as the instance's init helper
// (helper_linux.go, entered from an init function) in new mount, PID, IPC,
// UTS and network namespaces (and a user namespace when the server is not
// root). The server moves the helper into the instance's cgroup, then
// sends it a spec (spec.go, planned by rootplan.go): the helper builds a
// read-only root holding only what the interpreter needs, with the host's
// own package directories masked (packages.go), mount points for the
// function's code at /var/task and its layers at /opt/layers, and a
// private /tmp (rootfs_linux.go), brings loopback
// up, sets rlimits, empties its capability bounding set, sets no_new_privs,
// loads the seccomp filter (seccomp_linux.go) and, told what to run,
// becomes an unprivileged user and execs /bin/sh as the namespace's init:
// the shell runs the interpreter, reaps orphans and reports how it ended;
// when it exits the kernel kills everything left in the namespace. The
// interpreter speaks the runtime protocol over dedicated pipes (fds 3 and
// 4), so what user code prints never corrupts it. A started helper with
// its sandbox, cgroup and pipes, not yet told what to run, is a sandbox
// (sandbox.go).
//
// None of the sandbox depends on the function (its code and layers are
// mounted into it from outside once it is known, mount_linux.go), and
// starting a helper costs
// several milliseconds (namespaces, exec, and on cgroup v1 a move into the
// cgroup that waits for an RCU grace period), so the driver keeps spares
// (spare.go). cgroup_linux.go sets memory, pids and CPU limits in cgroup
// v2 or v1 and reads out-of-memory kills. isolation.go finds at start-up
// which protections the host allows, logs them, and reports them to GET
// /api/system; without namespaces the driver falls back to plain
// processes, loudly, or refuses in strict mode. docs/isolation.md
// describes the model and its limits.
//
// The provided runtime's worker is the Runtime API relay
// (internal/runtimeapi): this binary, bound read-only into every sandbox
// at runtimeapi.RelayPath and run as the interpreter would be. It serves
// the Runtime API on 127.0.0.1 of the instance's own network namespace
// and runs the function's bootstrap; a provided function with network
// access (the host's namespace) is refused rather than given a listener
// on the host's loopback, and so is one without isolation.
//
// Python workers are forked from a zygote (zygote_linux.go, running
// runtime/python/zygote.py) rather than started as interpreters: the helper
// holds its finished sandbox as an init shell, and the zygote's child joins
// its namespaces and cgroup (passed as file descriptors) and drops every
// privilege before it runs the shim. The zygote reaps its workers and
// reports how they end.
//
// # Vocabulary
//
// What is started ahead of need, before it knows its function, is a
// spare: one word for all of it. "Pool" is not used here: it is the
// engine's per-function set of instances, which this driver knows nothing
// of.
//
//   - A spare sandbox is a sandbox that waits for a function: its helper
//     has built and locked down the sandbox around an empty code
//     directory. EnvSpareSandboxes (NIMBUS_SANDBOX_WARM) says how many are
//     kept.
//   - A spare worker is a spare sandbox whose interpreter has started too,
//     with the shim loaded (forked from the zygote for Python), waiting for
//     Init. EnvSpareWorkers (NIMBUS_SANDBOX_PRESTART) says how many are kept
//     per runtime.
//   - A sandbox is assigned to a function when the function's code and
//     layers are mounted into it (copied, where the server cannot mount
//     into it: in a user namespace) and its cgroup's limits are set
//     (sandbox.go, assign). An assigned spare
//     worker is specialised: it becomes an instance of that function, and
//     Init, with the function's environment, loads its handler.
//
// The settings' names (…_WARM, …_PRESTART) are historical: they are kept
// because users set them, and only the Go names behind them say "spare".
//
// The driver knows nothing of HTTP, the store or pools of instances.
package sandbox
