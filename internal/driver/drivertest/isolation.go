package drivertest

import (
	"errors"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/testenv"
)

// IsolationOptions says what confinement the driver promises.
type IsolationOptions struct {
	// MaxProcesses is the most processes (and threads) an instance may
	// have; 0 skips the fork bomb case.
	MaxProcesses int
	// MemoryLimit: as Options.MemoryLimit.
	MemoryLimit bool
}

// RunIsolation checks that an instance cannot write outside /tmp, has no
// network interface but loopback (for a function without network), cannot
// exceed its process limit, runs unprivileged, and dies of exceeding its
// memory.
func RunIsolation(t *testing.T, newDriver Factory, opts IsolationOptions) {
	for _, c := range []struct {
		name string
		run  func(t *testing.T, d driver.Driver, rt string, opts IsolationOptions)
	}{
		{"ReadOnlyFS", testReadOnlyFS},
		{"NoNetwork", testNoNetwork},
		{"Unprivileged", testUnprivileged},
		{"ForkBomb", testForkBomb},
		{"Memory", func(t *testing.T, d driver.Driver, rt string, o IsolationOptions) {
			testOOM(t, d, rt, Options{MemoryLimit: o.MemoryLimit})
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := newDriver(t)
			for _, rt := range Runtimes {
				t.Run(rt, func(t *testing.T) { c.run(t, d, rt, opts) })
			}
		})
	}
}

// testReadOnlyFS checks where the handler can create a file: /tmp only.
func testReadOnlyFS(t *testing.T, d driver.Driver, rt string, _ IsolationOptions) {
	code := map[string]string{
		runtime.Python: `
import os
def handler(event, context):
    out = {}
    for d in event:
        p = os.path.join(d, "nimbus-probe")
        try:
            with open(p, "w") as f:
                f.write("x")
            os.remove(p)
            out[d] = "written"
        except OSError as e:
            out[d] = e.strerror or str(e)
    return out
`,
		runtime.NodeJS: `
const fs = require('fs');
const path = require('path');
exports.handler = async (event) => {
  const out = {};
  for (const d of event) {
    const p = path.join(d, 'nimbus-probe');
    try { fs.writeFileSync(p, 'x'); fs.unlinkSync(p); out[d] = 'written'; }
    catch (e) { out[d] = e.code || String(e); }
  }
  return out;
};
`,
	}[rt]
	f := Function(t, rt, Source(rt, code))
	in := Start(t, d, f)
	dirs := []string{"/tmp", "/", "/etc", "/usr", "/var", ".", "/var/task"}
	got := MustInvoke[map[string]string](t, in, dirs)
	for _, dir := range dirs {
		if want := dir == "/tmp"; (got[dir] == "written") != want {
			t.Errorf("writing in %s: %s", dir, got[dir])
		}
	}
}

func testNoNetwork(t *testing.T, d driver.Driver, rt string, _ IsolationOptions) {
	code := map[string]string{
		runtime.Python: `
import socket
def handler(event, context):
    names = [n for _, n in socket.if_nameindex()]
    try:
        s = socket.create_connection(("1.1.1.1", 53), timeout=1)
        s.close()
        reached = True
    except OSError:
        reached = False
    return {"interfaces": names, "reached": reached}
`,
		runtime.NodeJS: `
const fs = require('fs');
const net = require('net');
exports.handler = async () => {
  const names = fs.readFileSync('/proc/net/dev', 'utf8').split('\n').slice(2)
    .map((l) => l.split(':')[0].trim()).filter(Boolean);
  const reached = await new Promise((ok) => {
    const s = net.connect({ host: '1.1.1.1', port: 53, timeout: 1000 });
    s.on('connect', () => { s.destroy(); ok(true); });
    s.on('error', () => ok(false));
    s.on('timeout', () => { s.destroy(); ok(false); });
  });
  return { interfaces: names, reached };
};
`,
	}[rt]
	in := Start(t, d, Function(t, rt, Source(rt, code)))
	got := MustInvoke[struct {
		Interfaces []string `json:"interfaces"`
		Reached    bool     `json:"reached"`
	}](t, in, nil)
	if len(got.Interfaces) != 1 || got.Interfaces[0] != "lo" {
		t.Errorf("network interfaces %q, want only lo", got.Interfaces)
	}
	if got.Reached {
		t.Errorf("a function without network reached an outside address")
	}
}

func testUnprivileged(t *testing.T, d driver.Driver, rt string, _ IsolationOptions) {
	code := map[string]string{
		runtime.Python: `
import os
def handler(event, context):
    status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines() if ":" in l)
    return {"uid": os.getuid(), "capEff": status["CapEff"].strip(), "noNewPrivs": status.get("NoNewPrivs", "").strip()}
`,
		runtime.NodeJS: `
const fs = require('fs');
exports.handler = async () => {
  const status = Object.fromEntries(fs.readFileSync('/proc/self/status', 'utf8').split('\n')
    .filter((l) => l.includes(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]));
  return { uid: process.getuid(), capEff: status.CapEff, noNewPrivs: status.NoNewPrivs || '' };
};
`,
	}[rt]
	in := Start(t, d, Function(t, rt, Source(rt, code)))
	got := MustInvoke[struct {
		UID        int    `json:"uid"`
		CapEff     string `json:"capEff"`
		NoNewPrivs string `json:"noNewPrivs"`
	}](t, in, nil)
	if got.UID == 0 {
		t.Errorf("the handler runs as root")
	}
	if got.CapEff != "0000000000000000" {
		t.Errorf("effective capabilities %s, want none", got.CapEff)
	}
	if got.NoNewPrivs != "1" {
		t.Errorf("no_new_privs %q, want 1", got.NoNewPrivs)
	}
}

// testForkBomb starts processes that linger until fork fails: the count
// must stay under the limit, and the instance must still answer.
func testForkBomb(t *testing.T, d driver.Driver, rt string, opts IsolationOptions) {
	if opts.MaxProcesses == 0 {
		testenv.Require(t, "a process limit", errors.New("the driver promises none"))
	}
	code := map[string]string{
		runtime.Python: `
import os, time
def handler(event, context):
    n, err = 0, ""
    while n < 10000:
        try:
            pid = os.fork()
        except OSError as e:
            err = e.strerror or str(e)
            break
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        n += 1
    return {"forked": n, "error": err}
`,
		runtime.NodeJS: `
const { spawn } = require('child_process');
exports.handler = async () => {
  let n = 0, err = '';
  const children = [];
  while (n < 10000) {
    const r = await new Promise((ok) => {
      const c = spawn('/bin/sh', ['-c', 'read x'], { stdio: ['pipe', 'ignore', 'ignore'] });
      c.on('spawn', () => ok({ c }));
      c.on('error', (e) => ok({ e }));
    });
    if (r.e) { err = r.e.code || String(r.e); break; }
    children.push(r.c);
    n++;
  }
  return { forked: n, error: err };
};
`,
	}[rt]
	// Memory enough for the processes the limit allows, so that only the
	// process limit can stop them: running out of memory first would prove
	// nothing about it, and fails.
	f := Function(t, rt, Source(rt, code))
	f.Memory = 1024
	in := Start(t, d, f)
	resp, err := Invoke(in, nil, 60*time.Second)
	if err != nil {
		t.Fatalf("invoke: %v (the process limit should have stopped the forks first)", err)
	}
	if resp.Error != nil {
		t.Fatalf("handler failed: %+v", resp.Error)
	}
	var got struct {
		Forked int    `json:"forked"`
		Error  string `json:"error"`
	}
	if err := jsonUnmarshal(resp.Result, &got); err != nil {
		t.Fatal(err)
	}
	if got.Forked >= opts.MaxProcesses || got.Error == "" {
		t.Errorf("forked %d processes (error %q), want fewer than %d and a failure", got.Forked, got.Error, opts.MaxProcesses)
	}
	t.Logf("%s: %d processes started before: %s", rt, got.Forked, got.Error)
	in.Kill("fork bomb test over")
	WaitDone(t, in, 30*time.Second)
	in2 := Start(t, d, Function(t, rt, Source(rt, map[string]string{
		runtime.Python: "def handler(event, context):\n    return 'fine'\n",
		runtime.NodeJS: "exports.handler = async () => 'fine';\n",
	}[rt])))
	if got := MustInvoke[string](t, in2, nil); got != "fine" {
		t.Errorf("after the fork bomb: %q", got)
	}
}
