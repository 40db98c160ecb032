package image

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sort"
	"strings"
)

// lddBatch is how many files one ldd run looks at.
const lddBatch = 64

// SharedLibs lists the shared libraries the given ELF files load, the
// dynamic loader included, as ldd resolves them on this host, sorted.
// Libraries ldd cannot find (an optional extension's) are left out: the
// module that needs one fails to load, as it does on the host. A static
// file, or one that is not ELF, adds nothing.
func SharedLibs(ctx context.Context, elfs []string) ([]string, error) {
	libs := map[string]bool{}
	for i := 0; i < len(elfs); i += lddBatch {
		batch := elfs[i:min(i+lddBatch, len(elfs))]
		// With several files ldd heads each list with "file:"; with one it
		// does not. It exits non-zero when one of them is not dynamic.
		args := append([]string{"--"}, batch...)
		out, err := exec.CommandContext(ctx, "ldd", args...).Output()
		if err != nil && (!errors.As(err, new(*exec.ExitError)) || ctx.Err() != nil) {
			return nil, fmt.Errorf("ldd %s: %w", batch[0], err)
		}
		for _, l := range ParseLdd(out) {
			libs[l] = true
		}
	}
	out := make([]string, 0, len(libs))
	for l := range libs {
		out = append(out, l)
	}
	sort.Strings(out)
	return out, nil
}

// ParseLdd returns the library paths in what ldd prints, for one file or
// several:
//
//	/usr/bin/python3.11:
//		linux-vdso.so.1 (0x00007ffd...)          no file: left out
//		libm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x...)
//		libfoo.so.1 => not found                 left out
//		/lib64/ld-linux-x86-64.so.2 (0x...)      the dynamic loader
//		not a dynamic executable
func ParseLdd(out []byte) []string {
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasSuffix(line, ":") {
			continue // "file:", heading each file's list
		}
		if _, target, ok := strings.Cut(line, "=> "); ok {
			line = target
		}
		path, _, _ := strings.Cut(line, " (")
		if strings.HasPrefix(path, "/") {
			libs = append(libs, path)
		}
	}
	return libs
}
