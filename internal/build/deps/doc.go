// Package deps builds a function's declared dependencies into a layer: a
// read-only directory named by a content key, shared by every function
// whose build would be the same, in AWS Lambda's layout (python/ for pip's
// --target, nodejs/node_modules/ for npm).
//
// Plan reads the dependency files at the top of a function's unpacked code
// (requirements.txt or pyproject.toml's [project].dependencies;
// package.json with package-lock.json or npm-shrinkwrap.json) and hashes
// into the key everything the result depends on. Build runs pip or npm
// once per key, in Dir/tmp/<random>/, streams its output, seals the
// layer and renames it to Dir/<key>/; Collect removes the layers no
// longer wanted.
//
// # The build sandbox
//
// The server re-executes its own binary as the build's helper
// (helper_linux.go, entered from an init function, as the sandbox
// driver's). When the server is root, this holds for every build:
//
//   - Unprivileged user: the command runs as Config.UID/GID (65534 by
//     default, never root), with no supplementary groups, no capabilities
//     and no_new_privs (set-user-ID programs and file capabilities give
//     nothing). The work directory it writes is chowned to that user; the
//     finished layer is chowned back to root and made read-only.
//   - Namespaces: new mount, PID, IPC and UTS namespaces. The mount
//     namespace is made private (nothing propagates to the host) and gets
//     a root of its own: a read-only tmpfs holding the host's /usr and its
//     top-level links (/bin, /lib…), a few files of /etc (no secrets; the
//     network files only for a networked build), the interpreter's
//     installation and npm, local package sources (read-only), five device
//     nodes, a private /tmp (tmpfs, 64 MiB), a /proc of the new PID
//     namespace, and the build's work directory, the only place it can
//     write (nosuid, nodev). The server's data, other builds, other layers,
//     home directories and the host's processes are not visible.
//   - Network: a build whose every package source is a local directory
//     (Python with PipFindLinks a path or file: URL and no index, or a file:
//     index) runs in a new network namespace with only loopback up: no
//     network at all. Any other build (any npm build, pip with an index)
//     needs its registry, and shares the host's network namespace: it can
//     reach anything the host can, loopback services included. The
//     network is not limited to the registry.
//   - Processes: the helper leads its own session and process group, and
//     gets SIGKILL if the server dies (Pdeathsig, set again after the
//     change of user). The build's command becomes PID 1 of the new PID
//     namespace, so when it exits the kernel kills everything it left;
//     the server also kills the helper's process group then.
//   - Time: Config.Timeout, from the start of the helper; on expiry the
//     process group is killed (and with it the PID namespace) and the
//     error says "timed out after …".
//   - Memory: Config.Confine (the sandbox driver's cgroups), when set, puts
//     the helper under Config.MemoryMB before the build runs: the helper
//     blocks reading its spec, and the server sends the spec only once
//     Confine has returned, so nothing of pip or npm runs unconfined; its
//     children inherit the cgroup. Without Confine, memory is not limited.
//   - Environment: PATH, HOME and TMPDIR in the work directory, LANG, and
//     the tool's own settings (pip's and npm's host configuration files
//     are ignored); nothing of the server's environment.
//
// Not done, unlike a function's sandbox: no seccomp filter, no rlimits,
// no user namespace; the CPU is not limited (Config.MaxBuilds bounds how
// many builds run at once); disk use of a build and its layer is not
// limited. When the server is not root, builds run as the server's own
// user in no namespace, with only the process group, the time limit,
// Confine and the minimal environment; the build's log says so.
//
// Install scripts: off by default (Plan's scripts). pip then takes wheels
// only (--only-binary=:all:: no setup.py or build backend runs) and npm
// runs with --ignore-scripts (which npm passes on to the npm it runs to
// prepare a git dependency). pip builds some requirements from source
// whatever --only-binary says (a direct reference to an sdist, a git URL
// or a path, -e, a --no-binary in the file, a -r URL that may hold any of
// these): without scripts Plan refuses them, naming the line. So no code
// of a package runs during an ordinary build. With scripts on, sdists are
// built and lifecycle scripts run, inside the sandbox above.
//
// The package imports fn and runtime only; it knows nothing of HTTP, the
// store or drivers (Confine is a function). It is Linux only.
package deps
