// Package microvm is the driver that runs each function instance in a
// minimal virtual machine with its own guest kernel, Firecracker style:
// QEMU's microvm machine type, direct boot of an uncompressed kernel, no
// firmware, virtio-mmio devices only.
//
// A guest boots Debian's kernel with a busybox initramfs whose init loads
// the virtio modules, mounts a read-only squashfs image holding the host's
// interpreter as the worker's root, and starts a small language agent on a
// virtio-serial port. The agent sets the guest up for one function (clock,
// randomness, its code at /var/task and layers at /opt/layers/<i>, sent
// file by file, read-only to that user, environment, an unprivileged user) and
// hands the port
// to the same runtime shim the other drivers run, as fds 3 and 4: the
// runtime protocol is unchanged. The build sub-package makes these
// artifacts from Debian packages and the host's interpreters (`nimbus
// microvm build`) and writes the manifest; the driver only reads the
// manifest and the artifacts it names.
//
// Booting takes seconds under emulation, so for runtimes whose descriptor
// allows snapshots (runtime.Runtime.Snapshots: Python) the driver boots one
// template VM per memory size, whose RAM lives in a shared file, and saves
// its device state once the interpreter waits for its function; each
// instance is then a clone restored from that snapshot with the RAM file
// mapped copy-on-write, in about a tenth of a second. Node.js guests always
// boot afresh: a cloned Node process would share its random state with every
// other clone and cannot be reseeded from inside. Each runtime's guest
// agent (guest/agent.*) is the file its descriptor's Agent names; the
// guest's init (guest/init.sh) still starts each runtime's interpreter by
// name.
//
// Hardware virtualization (kvm_intel or kvm_amd) is used when the host has
// it; otherwise QEMU emulates the CPU (TCG), which works everywhere and is
// about sixteen times slower for function code.
//
// The package knows nothing of HTTP, the store or the engine's pools.
package microvm
