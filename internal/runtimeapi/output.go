package runtimeapi

import (
	"errors"

	"golang.org/x/sys/unix"

	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// What the bootstrap prints is the logs of the call it serves, as a
// Python handler's prints are. The bootstrap writes its output before it
// posts the response, so whatever it wrote is in the pipe when the POST
// arrives: the output pipe is non-blocking and drained, under the relay's
// lock, at every change of whom the output belongs to (drainLocked), and
// in between by pump as it arrives. Output before the first …/next is the
// init's; during a call the oldest call's; outside any call it goes to the
// relay's stderr (the driver's debug log), as the shims pass it through.

// output is the read end of the bootstrap's stdout and stderr.
type output struct {
	fd   int
	sink func([]byte) // called with the relay's lock held
	eof  bool
	buf  [32 << 10]byte
}

// pump reads the output as it arrives until the bootstrap and everything
// it started have closed it.
func (r *Relay) pump() {
	r.mu.Lock()
	o := r.out
	r.mu.Unlock()
	fds := []unix.PollFd{{Fd: int32(o.fd), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(fds, -1); err != nil && !errors.Is(err, unix.EINTR) {
			return
		}
		r.mu.Lock()
		r.drainLocked()
		eof := o.eof
		r.mu.Unlock()
		if eof {
			return
		}
	}
}

// drainLocked reads what is in the output pipe now and hands it to the
// sink. The caller holds r.mu.
func (r *Relay) drainLocked() {
	o := r.out
	if o == nil || o.eof {
		return
	}
	for {
		n, err := unix.Read(o.fd, o.buf[:])
		if n > 0 {
			o.sink(o.buf[:n])
			continue
		}
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
			return
		}
		// 0 bytes: every writer is gone; or a read error.
		o.eof = true
		unix.Close(o.fd)
		return
	}
}

// sinkLocked gives output b to whom it belongs now. The caller holds r.mu.
func (r *Relay) sinkLocked(b []byte) {
	switch {
	case !r.ready && r.initLogs != nil:
		r.initLogs.add(b)
	case len(r.order) > 0:
		r.order[0].logs.add(b)
	default:
		_, _ = r.cfg.Stderr.Write(b)
	}
}

// logBuf is one call's (or the init's) output, capped.
type logBuf struct {
	b         []byte
	limit     int
	truncated bool
}

func newLogBuf(limit int) *logBuf { return &logBuf{limit: limit} }

func (l *logBuf) add(b []byte) {
	if room := l.limit - len(l.b); len(b) > room {
		b = b[:max(room, 0)]
		l.truncated = true
	}
	l.b = append(l.b, b...)
}

// into sets resp's logs from l (nil: none).
func (l *logBuf) into(resp *runtime.Response) {
	if l == nil {
		return
	}
	resp.Logs = string(l.b)
	resp.LogsTruncated = l.truncated
}
