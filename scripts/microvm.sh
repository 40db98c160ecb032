#!/usr/bin/env bash
# Prepares the microvm driver and its tests: installs QEMU (qemu-system-x86)
# and what `nimbus microvm build` uses (squashfs-tools, xz-utils) when
# missing, then builds the artifacts: a kernel and an initramfs from
# Debian's linux-image-amd64 and busybox-static packages, and a squashfs
# image per runtime from this host's python3 and node. Artifacts are
# rebuilt only when their inputs change; they go to $NIMBUS_MICROVM_DIR
# (default ~/.cache/nimbus/microvm). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi

# apt: another apt-get (a colleague's, unattended-upgrades) may hold the
# lock for a while; wait for it rather than fail.
apt_retry() {
	for i in $(seq 1 30); do
		if $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=60 "$@"; then
			return 0
		fi
		echo "microvm: apt-get $* failed (try $i); retrying" >&2
		sleep 5
	done
	return 1
}

missing=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || missing+=(qemu-system-x86)
command -v mksquashfs >/dev/null 2>&1 || missing+=(squashfs-tools)
command -v xz >/dev/null 2>&1 || missing+=(xz-utils)
if ((${#missing[@]})); then
	echo "microvm: installing ${missing[*]}" >&2
	apt_retry update -qq
	apt_retry install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# apt-get download needs the package lists.
if ! apt-cache show --no-all-versions linux-image-amd64 >/dev/null 2>&1; then
	apt_retry update -qq
fi

go build -o bin/nimbus ./cmd/nimbus
./bin/nimbus microvm build
