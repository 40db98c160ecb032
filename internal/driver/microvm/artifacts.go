package microvm

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"embed"

	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// The guest's init and language agents, embedded in the binary and put in
// the initramfs by the build sub-package. Each runtime's descriptor names
// its agent (runtime.Runtime.Agent).
var (
	//go:embed guest/init.sh
	guestInit []byte
	//go:embed guest/agent.*
	guestAgents embed.FS
)

// GuestFiles are the files the initramfs holds besides busybox and the
// kernel modules.
type GuestFiles struct {
	Init   []byte // the guest's /init, a busybox shell script
	Agents []Agent
}

// Agent is a runtime's language agent, in the guest's /nimbus.
type Agent struct {
	Name string // "agent.py"
	Data []byte
}

// Guest returns the guest files of this nimbus, which AgentVersion hashes:
// the init and every runtime's agent, in table order.
func Guest() GuestFiles {
	g := GuestFiles{Init: guestInit}
	for _, r := range runtime.All() {
		if r.Agent == "" {
			continue // a relayed runtime: no guest agent yet
		}
		b, err := guestAgents.ReadFile("guest/" + r.Agent)
		if err != nil {
			panic("microvm: the " + r.Name + " agent: " + err.Error()) // TestGuestFiles checks
		}
		g.Agents = append(g.Agents, Agent{Name: r.Agent, Data: b})
	}
	return g
}

// The guest user the worker runs as once the agent has set it up; runtime
// images name it in their /etc/passwd.
const (
	GuestUID = 1000
	GuestGID = 1000

	// Unexported names of the same, for the instance code.
	guestUID = GuestUID
	guestGID = GuestGID
)

// AgentVersion is a short hash of the guest files: artifacts built by a
// nimbus with other guest files are refused, since the driver and the
// agent speak a protocol of their own.
func AgentVersion() string {
	h := sha256.New()
	g := Guest()
	files := [][]byte{g.Init}
	for _, a := range g.Agents {
		files = append(files, a.Data)
	}
	for _, b := range files {
		fmt.Fprintf(h, "%d\n", len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// ManifestFormat is the version of the manifest's layout.
const ManifestFormat = 1

// ManifestName is the file in the artifacts directory that names the
// current artifacts; the build writes it last.
const ManifestName = "manifest.json"

// Manifest describes a set of built artifacts. Paths are relative to the
// directory holding the manifest.
type Manifest struct {
	Format        int                     `json:"format"`
	Agent         string                  `json:"agent"` // AgentVersion of the nimbus that built them
	Kernel        string                  `json:"kernel"`
	KernelVersion string                  `json:"kernelVersion"`
	Initramfs     string                  `json:"initramfs"`
	Runtimes      map[string]RuntimeImage `json:"runtimes"`
	BuiltAt       time.Time               `json:"builtAt"`
}

// RuntimeImage is one runtime's read-only root file system.
type RuntimeImage struct {
	Image       string `json:"image"`       // the squashfs file
	Interpreter string `json:"interpreter"` // its path inside the image
	Version     string `json:"version"`
	SizeBytes   int64  `json:"sizeBytes"`
}

// artifacts is a manifest read from dir, with absolute paths.
type artifacts struct {
	dir      string
	m        Manifest
	modTime  time.Time
	kernel   string
	initrd   string
	runtimes map[string]string // runtime → absolute image path
}

// errNoArtifacts says the artifacts have not been built.
var errNoArtifacts = errors.New("microVM artifacts are not built")

// artifactCache reads the manifest again only when it changes.
type artifactCache struct {
	dir string
	mu  sync.Mutex
	a   *artifacts
	err error
	at  time.Time // modification time the cached result is for
}

// get returns the current artifacts, or why there are none usable.
func (c *artifactCache) get() (*artifacts, error) {
	path := filepath.Join(c.dir, ManifestName)
	st, err := os.Stat(path)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w in %s: run `nimbus microvm build`", errNoArtifacts, c.dir)
		}
		return nil, fmt.Errorf("microVM artifacts: %w", err)
	}
	if (c.a != nil || c.err != nil) && st.ModTime().Equal(c.at) {
		return c.a, c.err
	}
	c.a, c.err = readArtifacts(c.dir)
	c.at = st.ModTime()
	return c.a, c.err
}

func readArtifacts(dir string) (*artifacts, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return nil, fmt.Errorf("microVM artifacts: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("microVM artifacts: %s: %w", ManifestName, err)
	}
	if m.Format != ManifestFormat || m.Agent != AgentVersion() {
		return nil, fmt.Errorf("%w for this version of nimbus (the ones in %s have guest agent %s, this nimbus has %s): run `nimbus microvm build`",
			errNoArtifacts, dir, m.Agent, AgentVersion())
	}
	a := &artifacts{
		dir:      dir,
		m:        m,
		kernel:   filepath.Join(dir, m.Kernel),
		initrd:   filepath.Join(dir, m.Initramfs),
		runtimes: map[string]string{},
	}
	for _, f := range []string{a.kernel, a.initrd} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("%w: %v: run `nimbus microvm build`", errNoArtifacts, err)
		}
	}
	for rt, img := range m.Runtimes {
		p := filepath.Join(dir, img.Image)
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%w: %v: run `nimbus microvm build`", errNoArtifacts, err)
		}
		a.runtimes[rt] = p
	}
	return a, nil
}
