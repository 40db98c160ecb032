#!/usr/bin/env bash
# fuzz.sh TARGET PACKAGE: runs one Go fuzz target for FUZZTIME (10s).
#
# A real finding always writes its input to PACKAGE/testdata/fuzz/TARGET/
# and fails. Go's fuzzing engine also fails now and then with no finding at
# all: "context deadline exceeded" as -fuzztime ends while a worker is
# mid-input, or "fuzzing process hung" on a loaded machine
# (golang/go#51484, #56238); seen once in this suite. So a failure that
# wrote no input is run again, up to three times in all; a failure that
# wrote one fails at once, naming it.
set -uo pipefail
target=$1 pkg=$2
dir="$pkg/testdata/fuzz/$target"
go=${GO:-go}
for try in 1 2 3; do
	before=$(ls "$dir" 2>/dev/null | sort)
	out=$("$go" test -run '^$' -fuzz "^${target}\$" -fuzztime "${FUZZTIME:-10s}" "$pkg" 2>&1)
	rc=$?
	if [ $rc -eq 0 ]; then
		printf '%s\n' "$out" | tail -n 2
		exit 0
	fi
	after=$(ls "$dir" 2>/dev/null | sort)
	if [ "$before" != "$after" ]; then
		printf '%s\n' "$out" | grep -v '^fuzz: elapsed'
		echo "fuzz: $target found a failing input (above): see $dir" >&2
		exit 1
	fi
	printf '%s\n' "$out" | grep -v '^fuzz: elapsed' | tail -n 5
	echo "fuzz: $target failed without a failing input (try $try of 3): the fuzzing engine's own flake; running it again" >&2
done
echo "fuzz: $target failed three times without a failing input" >&2
exit 1
