package sandbox

import (
	"errors"
	"fmt"
	"sync/atomic"
)

var confined atomic.Int64

// Confine puts process pid in a cgroup of its own beside the instances',
// with limitMB megabytes of memory, no swap and the instances' process
// limit; release removes the cgroup once the process has exited. The
// server's syntax checker runs under it: its input is anyone's source.
func (d *Driver) Confine(pid, limitMB int) (func(), error) {
	if d.cg == nil {
		return nil, errors.New("no cgroups to confine a process with")
	}
	g, err := d.cg.create(fmt.Sprintf("helper-%d-%d", pid, confined.Add(1)))
	if err != nil {
		return nil, err
	}
	if err := g.limit(limitMB); err != nil {
		g.remove()
		return nil, err
	}
	if err := g.attach(pid); err != nil {
		g.remove()
		return nil, err
	}
	return g.remove, nil
}
