package docker

// PooledReady counts the started generic containers ready for rt at the
// default memory size.
func (d *Driver) PooledReady(rt string) int {
	p := d.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.keys[poolKey{runtime: rt, memoryMB: d.opts.memoryMB}]; e != nil {
		return len(e.ready)
	}
	return 0
}
