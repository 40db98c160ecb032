package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/runtimeapi"
)

// isolation is what this host lets the driver do, found at start-up.
type isolation struct {
	on      bool // instances run in the sandbox at all
	userns  bool // in a user namespace (the server is not root)
	seccomp bool
	cgroups bool
	// codeMounts: code and layers are mounted into sandboxes from outside
	// (mount_linux.go); else they are copied into their directories.
	codeMounts   bool
	noCodeMounts error    // why not
	notes        []string // what is not protected, and why
}

// missing lists the protections this host does not allow.
func (iso isolation) missing() []string { return iso.notes }

func joinMissing(m []string) string { return strings.Join(m, "; ") }

// packagesTimeout bounds asking the interpreters for their package
// directories at start-up.
const packagesTimeout = 30 * time.Second

// detect finds out which protections work here: it plans the root, opens
// the cgroups and starts one sandbox with every protection as a probe,
// without seccomp if only that failed.
func (d *Driver) detect() isolation {
	var iso isolation
	if !d.opts.isolate {
		iso.notes = append(iso.notes, "isolation turned off by "+EnvIsolation+"=off: functions run as plain processes of the server's user")
		return iso
	}
	iso.userns = os.Geteuid() != 0
	relay, err := os.Executable()
	if err != nil {
		d.log.Warn("sandbox: the server's executable is unknown: the provided runtime cannot run", "error", err)
		relay = ""
	}
	plan, err := newRootPlan(d.cfg.Interpreters.Paths(), relay, d.opts.uid, d.opts.gid)
	if err != nil {
		iso.notes = append(iso.notes, "cannot plan the sandbox root: "+err.Error())
		return iso
	}
	ctx, cancel := context.WithTimeout(context.Background(), packagesTimeout)
	plan.packages, err = findHostPackages(ctx, d.cfg.Interpreters)
	cancel()
	if err != nil {
		d.log.Warn("sandbox: the host's package directories may not all be hidden from functions", "error", err)
	}
	d.plan = plan
	if err := canMountInto(d.instDir); err != nil {
		iso.noCodeMounts = err
	} else {
		iso.codeMounts = true
	}
	if cg, err := openCgroups(d.opts.pids); err != nil {
		iso.notes = append(iso.notes, "no cgroups (no memory, pids or CPU limits, OOM not detected): "+err.Error())
	} else {
		d.cg = cg
		iso.cgroups = true
		if cg.version == 1 && !cg.memsw {
			iso.notes = append(iso.notes, "cgroup v1 without swap accounting (memory.memsw): swap is not limited")
		}
		for _, c := range []string{"pids", "cpu"} {
			if !containsString(cg.controllers(), c) {
				iso.notes = append(iso.notes, "no "+c+" controller")
			}
		}
	}
	if _, err := seccompProgram(); err == nil {
		iso.seccomp = true
	} else {
		iso.notes = append(iso.notes, "no seccomp filter: "+err.Error())
	}
	d.isolation = iso
	err = d.probe()
	if err != nil && iso.seccomp && strings.HasPrefix(err.Error(), "seccomp:") {
		iso.notes = append(iso.notes, "no seccomp filter: "+err.Error())
		iso.seccomp = false
		d.isolation = iso
		err = d.probe()
	}
	if err != nil {
		why := "namespaces"
		if iso.userns {
			why = "user namespaces (the server is not root)"
		}
		iso = isolation{notes: []string{"cannot create a sandbox with " + why + ": " + err.Error() +
			": functions run as plain processes of the server's user"}}
		d.plan, d.cg = nil, nil
		return iso
	}
	iso.on = true
	return iso
}

// probe starts a helper that builds a sandbox, drops its privileges and
// loads the filter, then reports instead of running anything.
func (d *Driver) probe() error {
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer null.Close()
	h, specW, err := d.startHelper(false, null, null, null)
	if err != nil {
		return err
	}
	err = writeJSON(specW, d.instanceSpec("", "", false))
	if err == nil {
		err = writeJSON(specW, runSpec{})
	}
	specW.Close()
	werr := h.cmd.Wait()
	<-h.exited
	if err != nil {
		return err
	}
	st := parseStatus(h.status)
	switch {
	case st.err != "":
		return errors.New(st.err)
	case !st.probe:
		return fmt.Errorf("init helper stopped before it was done: %v", werr)
	}
	return nil
}

type parsedStatus struct {
	ready bool
	err   string
	probe bool
	exit  *helperExit
}

func parseStatus(b []byte) parsedStatus {
	var out parsedStatus
	for _, line := range bytes.Split(b, []byte("\n")) {
		var s helperStatus
		if len(line) == 0 || json.Unmarshal(line, &s) != nil {
			continue
		}
		if s.Error != "" {
			out.err = s.Error
		}
		out.probe = out.probe || s.Probe
		out.ready = out.ready || s.Ready
		if s.Exit != nil {
			out.exit = s.Exit
		}
		if n := s.ShellExit; n != nil {
			// A shell cannot tell exit(137) from SIGKILL: above 128 is
			// taken to be a signal, which is what it almost always is.
			out.exit = &helperExit{Code: *n}
			if *n > 128 && *n < 128+65 {
				out.exit = &helperExit{Code: -1, Signal: unix.SignalName(syscall.Signal(*n - 128))}
			}
		}
	}
	return out
}

// Protections says which protections the driver's instances run with, and
// which this host does not allow. The server shows it in GET /api/system.
func (d *Driver) Protections() map[string]string {
	p := map[string]string{}
	if d.opts.strict {
		p["strict"] = "on: functions are refused unless every protection is active"
	} else {
		p["strict"] = "off"
	}
	if m := d.isolation.missing(); len(m) > 0 {
		p["missing"] = joinMissing(m)
	}
	if !d.isolation.on {
		p["isolation"] = "off"
		return p
	}
	p["isolation"] = "on"
	ns := "mount, pid, ipc, uts, net (unless the function sets network: true)"
	if d.isolation.userns {
		ns += ", user"
	}
	p["namespaces"] = ns
	root := "read-only tmpfs holding /usr"
	for _, prefix := range d.plan.prefixes {
		root += ", " + prefix
	}
	p["root"] = root + ", a minimal /etc and /dev, the function's code at " + TaskDir + ", its layers at " + driver.LayersDir +
		"/<i>, the shims at " + RuntimeDir + " and the Runtime API relay (this binary) at " + runtimeapi.RelayPath + " (read-only), a private " + fmt.Sprint(d.opts.tmpMB) +
		" MB /tmp, /proc of its own PID namespace, no /sys"
	if d.isolation.codeMounts {
		p["code"] = "mounted: each instance sees the shared code and layer directories themselves, read-only"
	} else {
		p["code"] = "copied (hard links where the file system allows) into each instance's directories, bound read-only: " +
			"they cannot be mounted into a sandbox from outside here (" + d.isolation.noCodeMounts.Error() + ")"
	}
	if masks := d.plan.masks(); len(masks) > 0 {
		dirs := make([]string, len(masks))
		for i, m := range masks {
			dirs[i] = m.Path
		}
		p["hostPackages"] = "hidden (an empty read-only tmpfs on each): " + strings.Join(dirs, ", ")
	} else {
		p["hostPackages"] = "none found inside the root"
	}
	if d.cg != nil {
		c := fmt.Sprintf("v%d: memory (limit = the function's memory", d.cg.version)
		if d.cg.version == 2 || d.cg.memsw {
			c += ", swap included"
		}
		c += "), out-of-memory kills counted"
		if containsString(d.cg.controllers(), "pids") {
			c += fmt.Sprintf(", pids (%d)", d.opts.pids)
		}
		if containsString(d.cg.controllers(), "cpu") {
			c += ", cpu (weight proportional to memory, 1769 MB = one CPU)"
		}
		p["cgroup"] = c
	} else {
		p["cgroup"] = "none"
	}
	if d.isolation.seccomp {
		p["seccomp"] = fmt.Sprintf("on: %d calls and clone with namespace flags fail with EPERM, clone3 with ENOSYS, x32 and non-x86_64 calls refused", len(deniedSyscalls))
	} else {
		p["seccomp"] = "off"
	}
	p["uid"] = fmt.Sprintf("%d:%d", d.opts.uid, d.opts.gid)
	if d.isolation.userns {
		p["uid"] += " (in a user namespace, mapped to the server's user; supplementary groups kept)"
	} else {
		p["uid"] += " (supplementary groups cleared)"
	}
	p["noNewPrivs"] = "on"
	p["capabilities"] = "none (effective, permitted, inheritable, ambient and bounding sets empty)"
	p["rlimits"] = fmt.Sprintf("core 0, nofile 1024, fsize %d MB", d.opts.tmpMB+1)
	p["zygote"] = d.zygoteReport()
	return p
}

// zygoteReport says whether Python workers are forked from the zygote, and
// why not.
func (d *Driver) zygoteReport() string {
	switch {
	case d.zygote.alive():
		return fmt.Sprintf("on: python workers are forked from a preloaded interpreter (pid %d) outside every sandbox; "+
			"each joins its own sandbox's namespaces and cgroup and drops every privilege above before any function code exists in it", d.zygote.pid)
	case d.zygote != nil:
		return fmt.Sprintf("off: the python zygote exited (%v): python workers start as fresh interpreters", d.zygote.err)
	case d.zygoteOff != nil:
		return "off: " + d.zygoteOff.Error() + ": python workers start as fresh interpreters"
	}
	return "off"
}

// logProtections says at start-up which protections are active, loudly
// when some are not.
func (d *Driver) logProtections() {
	p := d.Protections()
	args := make([]any, 0, 2*len(p))
	for _, k := range []string{"isolation", "namespaces", "root", "code", "hostPackages", "cgroup", "seccomp", "uid", "noNewPrivs", "capabilities", "rlimits", "zygote", "strict"} {
		if v, ok := p[k]; ok {
			args = append(args, k, v)
		}
	}
	d.log.Info("sandbox protections", args...)
	if !d.isolation.on {
		d.log.Warn("SANDBOX ISOLATION IS OFF: functions run as plain processes with the server's privileges; do not run untrusted code", "why", p["missing"])
	} else if m := d.isolation.missing(); len(m) > 0 {
		d.log.Warn("sandbox runs with less isolation than it should", "missing", joinMissing(m))
	}
	if d.isolation.on && d.zygote == nil && d.opts.zygote && d.zygoteOff != nil {
		d.log.Warn("python workers start as fresh interpreters", "why", d.zygoteOff.Error())
	}
	if d.opts.strict && len(d.isolation.missing()) > 0 {
		d.log.Warn("strict mode: the sandbox driver refuses to run functions", "setting", EnvStrict)
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
