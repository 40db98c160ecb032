// Package docker is the driver that runs each function instance in its own
// container through the Docker Engine API.
//
// A container runs the same runtime shim as the sandbox driver and serves
// many calls. The shim speaks the runtime protocol on fds 3 and 4; the
// container's shell opens them on two named pipes (FIFOs) in a per-instance
// directory bind-mounted read-only at /var/nimbus, so no adapter runs in the
// container and what user code prints never touches the protocol. The
// instance directory's task/ is bind-mounted read-only at /var/task, its
// layers/ at /opt/layers, and the shims at /var/runtime.
//
// Starting a container costs a few hundred milliseconds, so the driver keeps
// a small pool of started, generic containers per runtime, memory size and
// network setting: the function's code directory and layers are hard-linked
// into the already mounted task/ and layers/<i> (container.go, give: no
// data copied, bytes and modes exact) and its environment travels in the
// Init frame.
//
// Containers carry io.nimbus.* labels; the driver removes those a crashed
// earlier run of the same server left behind, and every container it starts
// when the instance stops or the driver closes. Runtime images are the
// configured ones (NIMBUS_DOCKER_IMAGE_<RUNTIME>; by default the runtime
// descriptor's DockerImage: python:3.12-slim, node:20-slim), pulled when
// absent, or else images built locally from the host's interpreters by
// the build sub-package (`nimbus images build`), which needs no registry;
// the driver only finds those images, it never builds one.
//
// The package knows nothing of HTTP, the store or the engine's pools.
package docker
