package image

import (
	"context"
	"fmt"
	"os"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// Collect gathers what runtime rt needs from this host's interpreters, as
// its descriptor's image recipe says: the interpreter with the symlinks on
// the way to it and the libraries it loads, for Python the standard library
// (filtered by SkipStdlib) and the libraries of its extension modules, and
// the time zone database for functions that set TZ. Both drivers' images
// start from this tree.
func Collect(ctx context.Context, rt string, in runtime.Interpreters) (*Tree, error) {
	r, ok := runtime.Lookup(rt)
	if !ok {
		return nil, fmt.Errorf("runtime %q: %w", rt, fn.ErrInvalid)
	}
	if r.Image.Collect == runtime.CollectRelay {
		return collectRelay(ctx)
	}
	exe := in.Path(rt)
	if exe == "" {
		return nil, fmt.Errorf("no %s interpreter found on this host", r.Command)
	}
	t := NewTree()
	add := t.AddBinary
	if r.Image.Collect == runtime.CollectPython {
		add = t.AddPython
	}
	if err := add(ctx, exe); err != nil {
		return nil, err
	}
	if err := t.AddZoneinfo(); err != nil {
		return nil, err
	}
	return t, nil
}

// collectRelay is a relayed runtime's tree: the libraries this executable
// loads, which the driver mounts as the relay, and the time zone database.
// The function brings its own executable, static or linked against these.
func collectRelay(ctx context.Context) (*Tree, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("the server's executable: %w", err)
	}
	t := NewTree()
	if err := t.AddLibs(ctx, exe); err != nil {
		return nil, err
	}
	if err := t.AddZoneinfo(); err != nil {
		return nil, err
	}
	return t, nil
}

// Zoneinfo is the host's time zone database, which the C library reads
// for a function's TZ (about 4 MB).
const Zoneinfo = "/usr/share/zoneinfo"

// AddZoneinfo adds the time zone database, if the host has one, all of it:
// the Docker images always held the right/ (leap-second) and posix/ copies
// that the microVM images left out, and a TZ that works under one driver
// should work under the other (right/ is about 2 MB; posix/ is symlinks on
// Debian).
func (t *Tree) AddZoneinfo() error {
	if _, err := os.Stat(Zoneinfo); err != nil {
		return nil
	}
	_, err := t.AddDir(Zoneinfo, nil)
	return err
}
