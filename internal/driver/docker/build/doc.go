// Package build makes the docker driver's runtime images from this host's
// interpreters, without a registry (`nimbus images build`): the tree
// image.Collect gathers, plus /bin/sh, users, CA certificates and the
// driver's mount points, imported through the Docker Engine API as one
// layer and tagged with a hash of its content.
//
// Only cmd/ and the driver's tests import it: the driver itself finds the
// images it builds by their repository (docker.LocalRepo) and never
// builds one.
package build
