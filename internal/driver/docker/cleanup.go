package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/moby/client"

	"github.com/nimbusfaas/nimbus/internal/driver"
)

// serverID returns this server's id, kept in dir so that it outlives a
// crash: the next start removes the containers labelled with it.
func serverID(dir string) (string, error) {
	p := filepath.Join(dir, "server-id")
	if b, err := os.ReadFile(p); err == nil && len(strings.TrimSpace(string(b))) >= 8 {
		return strings.TrimSpace(string(b)), nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(b[:])
	if err := os.WriteFile(p, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("server id: %w", err)
	}
	return id, nil
}

// ownerID names this driver: host, boot, pid and the pid's start time, so
// that another server on this host can tell whether it still runs, and a
// random part that tells two drivers of one process apart.
func ownerID() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return host + "/" + bootID() + "/" + strconv.Itoa(os.Getpid()) + "/" + driver.ProcStart(os.Getpid()) + "/" + hex.EncodeToString(b[:])
}

func bootID() string {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(b))
}

// ownerGone reports whether owner is a process of this host and boot that
// no longer runs.
func ownerGone(owner string) bool {
	parts := strings.Split(owner, "/")
	if len(parts) != 5 {
		return false
	}
	host, _ := os.Hostname()
	if parts[0] != host || parts[1] != bootID() {
		return false
	}
	pid, err := strconv.Atoi(parts[2])
	if err != nil {
		return false
	}
	return driver.ProcStart(pid) != parts[3]
}

// removeLeftovers removes the containers an earlier run left: those of
// this server (its id is in the data dir) but not of this driver, and those
// of any server on this host whose process is gone.
func (d *Driver) removeLeftovers(ctx context.Context) {
	res, err := d.cli.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", labelManaged+"=true"),
	})
	if err != nil {
		d.log.Warn("list leftover containers", "error", err)
		return
	}
	var wg sync.WaitGroup
	for _, c := range res.Items {
		owner := c.Labels[labelOwner]
		if owner == d.owner || (c.Labels[labelServer] != d.server && !ownerGone(owner)) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := d.cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
			if err != nil {
				d.log.Warn("remove leftover container", "container", c.ID, "error", err)
				return
			}
			d.log.Info("removed a container left by an earlier run", "container", strings.TrimPrefix(firstName(c.Names), "/"), "owner", owner)
		}()
	}
	wg.Wait()
}

func firstName(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return names[0]
}
