// Package image collects what a runtime needs to run from this host into a
// file tree, as the runtime descriptor's image recipe says: the
// interpreter (with the symlinks on the way to it), the
// shared libraries it and its extension modules load as ldd resolves them,
// the language's standard library and the time zone database. The Docker
// driver's images and the microVM driver's root file systems are both made
// from Collect, so they hold the same files; a Tree is then written as a
// tar archive (Docker) or staged in a directory (squashfs).
//
// The Python standard library is filtered once, by SkipStdlib: tests,
// site-packages and dist-packages (functions bring their own packages, as
// on Lambda and in the official slim images), GUI, IDE and installer
// packages, help texts, build files and bytecode of other interpreters or
// optimisation levels are left out; everything a handler can import from
// the standard library stays.
//
// The package knows nothing of Docker, virtual machines or the drivers:
// the image formats, the files each driver adds and how images are stored
// are the business of the drivers' build packages, which only cmd/ and the
// drivers' tests import.
package image
