package docker

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// Settings read through driver.Config.Lookup.
const (
	EnvHost      = "DOCKER_HOST"        // the daemon, as the docker CLI reads it
	EnvPool      = "NIMBUS_DOCKER_POOL" // started generic containers kept per pool key
	EnvMemory    = "MAX_MEMORY"         // the default function memory, MB: pooled first
	EnvKeepAlive = "NIMBUS_KEEP_ALIVE"  // pool keys unused this long are emptied
	// EnvPull is when an absent image is pulled: "missing" (the default)
	// or "never", which uses the images `nimbus images build` made and
	// sends nothing to a registry (the tests and CI run this way).
	EnvPull = "NIMBUS_DOCKER_PULL"
)

// EnvImage is the setting that names runtime rt's image:
// NIMBUS_DOCKER_IMAGE_PYTHON, NIMBUS_DOCKER_IMAGE_NODEJS. By default it is
// the runtime descriptor's DockerImage, an official one; when that is
// absent and a pull fails, the driver uses the images `nimbus images build`
// made from the host's interpreters.
func EnvImage(rt string) string { return "NIMBUS_DOCKER_IMAGE_" + strings.ToUpper(rt) }

// Container limits that do not depend on the function.
const (
	pidsLimit = 64       // processes and threads per container
	tmpSize   = 64 << 20 // bytes of /tmp (a tmpfs, counted in the memory limit)
	// mbPerCPU ties CPU to memory as Lambda does (1,769 MB = one vCPU):
	// a container's CPU weight (cpu shares, 1024 per CPU) is its memory
	// over mbPerCPU, so under contention CPU is shared in proportion to
	// memory, as in the sandbox driver. Its hard cap (CFS quota) is that
	// many CPUs but at least one: a quota of a fraction of a CPU throttles
	// a 128 MB function's start-up for whole 100 ms periods (a pooled first
	// reply took 95 ms with a quarter CPU, 11 ms with one).
	mbPerCPU = 1769
	user     = "65534:65534" // nobody
)

// options are the driver's settings.
type options struct {
	host      string            // DOCKER_HOST; empty means the default socket
	images    map[string]string // runtime → image
	explicit  map[string]bool   // runtime → the image was configured, not a default
	poolSize  int               // per key; 0 turns the pool off
	memoryMB  int               // the memory size pooled before any call
	keepAlive time.Duration
	noPull    bool // never pull: use the locally built images
}

func readOptions(lookup func(string) (string, bool)) (options, error) {
	if lookup == nil {
		lookup = func(string) (string, bool) { return "", false }
	}
	o := options{
		images:    map[string]string{},
		explicit:  map[string]bool{},
		poolSize:  2,
		memoryMB:  128,
		keepAlive: 10 * time.Minute,
	}
	o.host, _ = lookup(EnvHost)
	for _, r := range runtime.All() {
		rt := r.Name
		o.images[rt] = r.Image.DockerImage
		if v, ok := lookup(EnvImage(rt)); ok && v != "" {
			o.images[rt] = v
			o.explicit[rt] = true
		}
	}
	if v, ok := lookup(EnvPool); ok && v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 32 {
			return o, fmt.Errorf("docker: %s=%q: want a number from 0 to 32", EnvPool, v)
		}
		o.poolSize = n
	}
	switch v, _ := lookup(EnvPull); v {
	case "", "missing":
	case "never":
		o.noPull = true
	default:
		return o, fmt.Errorf("docker: %s=%q: want missing or never", EnvPull, v)
	}
	if v, ok := lookup(EnvMemory); ok && v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			o.memoryMB = n
		}
	}
	if v, ok := lookup(EnvKeepAlive); ok && v != "" {
		d, err := time.ParseDuration(v)
		if n, nerr := strconv.Atoi(v); nerr == nil {
			d, err = time.Duration(n)*time.Millisecond, nil
		}
		if err == nil && d > 0 {
			o.keepAlive = d
		}
	}
	return o, nil
}
