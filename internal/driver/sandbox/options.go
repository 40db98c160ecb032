package sandbox

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/nimbusfaas/nimbus/internal/driver"
)

// Settings the driver reads through driver.Config.Lookup.
const (
	// EnvStrict=1 refuses to run functions with less than full isolation.
	EnvStrict = "NIMBUS_SANDBOX_STRICT"
	// EnvIsolation=off runs workers as plain processes (for debugging and
	// benchmarks); strict mode refuses that too.
	EnvIsolation = "NIMBUS_SANDBOX_ISOLATION"
	// EnvUID and EnvGID are the ids functions run as inside (65534).
	EnvUID = "NIMBUS_SANDBOX_UID"
	EnvGID = "NIMBUS_SANDBOX_GID"
	// EnvTmpMB is the size of each instance's private /tmp, MB (64).
	EnvTmpMB = "NIMBUS_SANDBOX_TMP_MB"
	// EnvPids is the most processes and threads an instance may have (64).
	EnvPids = "NIMBUS_SANDBOX_PIDS"
	// EnvSpareSandboxes is how many spare sandboxes are kept: started
	// ahead, waiting for a function (1; 0 starts each one on demand). The
	// setting's name is historical ("warm").
	EnvSpareSandboxes = "NIMBUS_SANDBOX_WARM"
	// EnvSpareWorkers is how many spare workers per runtime are kept: with
	// their interpreter started and the shim loaded, waiting for a function
	// (2; 0 starts interpreters on demand). The setting's name is historical
	// ("prestart").
	EnvSpareWorkers = "NIMBUS_SANDBOX_PRESTART"
	// EnvZygote=off starts every Python worker as a fresh interpreter
	// instead of forking it from the Python zygote (on).
	EnvZygote = "NIMBUS_SANDBOX_ZYGOTE"
)

// options are the driver's settings.
type options struct {
	strict         bool
	isolate        bool
	uid, gid       int
	tmpMB          int
	pids           int
	spareSandboxes int
	spareWorkers   int
	zygote         bool
}

func readOptions(cfg driver.Config) (options, error) {
	o := options{isolate: true, uid: 65534, gid: 65534, tmpMB: 64, pids: 64, spareSandboxes: 1, spareWorkers: 2, zygote: true}
	get := func(k string) string {
		if cfg.Lookup == nil {
			return ""
		}
		v, ok := cfg.Lookup(k)
		if !ok {
			return ""
		}
		return strings.TrimSpace(v)
	}
	switch v := strings.ToLower(get(EnvStrict)); v {
	case "", "0", "false", "no", "off":
	case "1", "true", "yes", "on":
		o.strict = true
	default:
		return o, fmt.Errorf("%s=%q: want 1 or 0", EnvStrict, v)
	}
	for _, s := range []struct {
		key string
		dst *bool
	}{{EnvIsolation, &o.isolate}, {EnvZygote, &o.zygote}} { // on by default
		switch v := strings.ToLower(get(s.key)); v {
		case "", "on", "1", "true":
		case "off", "0", "false":
			*s.dst = false
		default:
			return o, fmt.Errorf("%s=%q: want on or off", s.key, v)
		}
	}
	for _, s := range []struct {
		key      string
		dst      *int
		min, max int
	}{
		{EnvUID, &o.uid, 1, 1<<31 - 2},
		{EnvGID, &o.gid, 1, 1<<31 - 2},
		{EnvTmpMB, &o.tmpMB, 1, 1 << 20},
		{EnvPids, &o.pids, 8, 1 << 22},
		{EnvSpareSandboxes, &o.spareSandboxes, 0, 64},
		{EnvSpareWorkers, &o.spareWorkers, 0, 64},
	} {
		v := get(s.key)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < s.min || n > s.max {
			return o, fmt.Errorf("%s=%q: want a number from %d to %d", s.key, v, s.min, s.max)
		}
		*s.dst = n
	}
	return o, nil
}
