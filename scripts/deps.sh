#!/usr/bin/env bash
# Installs, with Debian's apt-get, what Nimbus's runtimes and tests need and
# this machine lacks. Safe to run again: it installs only what is missing.
set -euo pipefail

missing=()
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm) # dependency builds; Debian's nodejs lacks it
# Dependency builds run pip; their tests build wheels offline with Debian's
# python3, which needs setuptools and wheel for that.
/usr/bin/python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
/usr/bin/python3 -c 'import setuptools' >/dev/null 2>&1 || missing+=(python3-setuptools)
/usr/bin/python3 -c 'import wheel' >/dev/null 2>&1 || missing+=(python3-wheel)
command -v chromium >/dev/null 2>&1 || missing+=(chromium) # the UI's browser tests

if ((${#missing[@]})); then
	echo "deps: installing ${missing[*]}" >&2
	if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
