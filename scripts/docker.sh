#!/usr/bin/env bash
# Makes a Docker daemon answer for the docker driver and its tests: installs
# Debian's docker.io when dockerd is missing, starts dockerd in the
# background when none answers (log: /var/log/nimbus-dockerd.log), waits for
# it, then builds the runtime images from this host's interpreters with
# `nimbus images build` (no registry needed). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi

if ! command -v dockerd >/dev/null 2>&1; then
	echo "docker: installing docker.io" >&2
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq docker.io >/dev/null
fi

answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

if ! answers; then
	if [ -d /run/systemd/system ] && $SUDO systemctl start docker 2>/dev/null; then
		echo "docker: started the docker service" >&2
	else
		log=/var/log/nimbus-dockerd.log
		echo "docker: starting dockerd (log: $log)" >&2
		$SUDO bash -c "setsid nohup dockerd >>$log 2>&1 </dev/null &"
	fi
	for _ in $(seq 1 120); do
		answers && break
		sleep 0.5
	done
	if ! answers; then
		echo "docker: the daemon did not answer within 60s" >&2
		tail -n 20 /var/log/nimbus-dockerd.log >&2 || true
		exit 1
	fi
fi
echo "docker: daemon $(docker version --format '{{.Server.Version}}') answers" >&2

go build -o bin/nimbus ./cmd/nimbus
./bin/nimbus images build
