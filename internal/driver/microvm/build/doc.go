// Package build makes the artifacts the microvm driver boots
// (`nimbus microvm build`): an uncompressed kernel and its virtio and
// squashfs modules from Debian's linux-image package, an initramfs of
// busybox-static, those modules and the guest files (microvm.Guest), and
// a squashfs root file system per runtime holding the tree image.Collect
// gathers from this host, plus the guest's mount points and user. It
// writes the manifest (microvm.Manifest) last.
//
// Only cmd/ and the driver's tests import it: the driver itself reads the
// manifest and the artifacts it names, and never builds them. Debian
// packages, cpio and squashfs are its business alone.
package build
