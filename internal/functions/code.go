package functions

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nimbusfaas/nimbus/internal/build"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/store"
)

// Builder builds the dependencies a function's code declares
// (requirements.txt, pyproject.toml, package.json) into a layer.
type Builder interface {
	// Build builds, or finds built, the layer of the dependencies that
	// srcDir declares for runtime rt, writing the build's output to log.
	// It returns the layer's key and directory, both "" when srcDir
	// declares none, and whether the layer was built before.
	Build(ctx context.Context, rt, srcDir string, scripts bool, log io.Writer) (key, dir string, cached bool, err error)
	// Layer is the directory of the layer built under key, "" when this
	// node has none.
	Layer(key string) string
}

// Events receives the steps of builds for the live stream.
type Events interface {
	PublishBuild(functionID, name, state, line string)
}

// maxBuildLog bounds the build output kept with a function.
const maxBuildLog = 64 << 10

// ingest turns the code f brings (Files, ZipFile or Archive) into stored
// code: the canonical zip in the store, its files unpacked in the code
// cache, and f.CodeInfo describing them. Without new code it does
// nothing. Archives stream through files: memory stays bounded whatever
// their size.
func (s *Service) ingest(ctx context.Context, f *fn.Function) error {
	var src io.Reader
	switch {
	case f.Archive != nil:
		src = f.Archive
	case len(f.ZipFile) > 0:
		src = bytes.NewReader(f.ZipFile)
	case len(f.Files) == 0:
		return nil
	}
	if err := os.MkdirAll(s.cfg.CodeDir, 0o755); err != nil {
		return fmt.Errorf("store code: %w", err)
	}
	tmp, err := os.MkdirTemp(s.cfg.CodeDir, ".in-")
	if err != nil {
		return fmt.Errorf("store code: %w", err)
	}
	defer os.RemoveAll(tmp)
	files := filepath.Join(tmp, "files")
	if src != nil {
		if err := os.Mkdir(files, 0o755); err != nil {
			return err
		}
		if _, err := build.Unpack(src, files, s.cfg.Limits); err != nil {
			return err
		}
	} else if err := writeFiles(files, f.Files); err != nil {
		return err
	}
	m, err := s.storeTree(ctx, files, filepath.Join(tmp, "code.zip"))
	if err != nil {
		return fmt.Errorf("store code: %w", err)
	}
	f.CodeInfo = codeInfo(m)
	f.Files, f.ZipFile, f.Archive, f.Code = nil, nil, nil, ""
	return s.place(s.cfg.CodeDir, m.SHA256, files)
}

// writeFiles writes a JSON files map below dir, as an archive of them
// would unpack.
func writeFiles(dir string, fs fn.Files) error {
	zip, _, err := packFiles(fs)
	if err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	_, err = build.Unpack(bytes.NewReader(zip), dir, build.Limits{ArchiveBytes: int64(len(zip)) + 1, Files: fn.MaxFiles})
	return err
}

// storeTree packs the tree at dir into its canonical zip, written to the
// file zipPath, and stores that in the store.
func (s *Service) storeTree(ctx context.Context, dir, zipPath string) (*build.Manifest, error) {
	zf, err := os.Create(zipPath)
	if err != nil {
		return nil, err
	}
	defer zf.Close()
	m, err := build.Pack(dir, zf)
	if err != nil {
		return nil, err
	}
	if _, err := zf.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	if err := s.cfg.Store.PutBlob(ctx, m.SHA256, zf); err != nil {
		return nil, err
	}
	return m, nil
}

// place moves the unpacked tree dir into root/sha, unless this node has
// it already.
func (s *Service) place(root, sha, dir string) error {
	mu := s.unpackLock(filepath.Join(root, sha))
	mu.Lock()
	defer mu.Unlock()
	if _, err := os.Stat(filepath.Join(root, sha)); err == nil {
		return nil
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	return os.Rename(dir, filepath.Join(root, sha))
}

// packFiles packs a JSON files map into its canonical zip.
func packFiles(fs fn.Files) ([]byte, *build.Manifest, error) {
	if len(fs) == 0 {
		return nil, nil, errors.New("no code")
	}
	files := make(map[string]build.File, len(fs))
	for p, c := range fs {
		files[p] = build.File{Data: []byte(c), Mode: 0o644}
	}
	var zip bytes.Buffer
	m, err := build.PackFiles(files, &zip)
	return zip.Bytes(), m, err
}

// codeInfo is the manifest of a canonical zip as a function keeps it.
func codeInfo(m *build.Manifest) *fn.CodeInfo {
	c := &fn.CodeInfo{SHA256: m.SHA256, Size: m.Size, UnpackedSize: m.UnpackedSize, Files: make([]fn.FileInfo, len(m.Files))}
	for i, fi := range m.Files {
		c.Files[i] = fn.FileInfo{Path: fi.Path, Size: fi.Size, SHA256: fi.SHA256, Mode: fi.Mode, Link: fi.Link}
	}
	return c
}

// CodeDir returns the local directory holding the code stored under sha,
// unpacking it from the store first if this node has not yet. The bytes
// read from the store are checked against sha: stores may be shared.
func (s *Service) CodeDir(ctx context.Context, sha string) (string, error) {
	return s.blobDir(ctx, s.cfg.CodeDir, sha)
}

// blobDir is CodeDir for the blobs unpacked below root (code or layers).
func (s *Service) blobDir(ctx context.Context, root, sha string) (string, error) {
	if !fn.IsSHA256(sha) {
		return "", fmt.Errorf("code %q: %w", sha, fn.ErrInvalid)
	}
	dir := filepath.Join(root, sha)
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	mu := s.unpackLock(dir)
	mu.Lock()
	defer mu.Unlock()
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	rc, _, err := s.cfg.Store.OpenBlob(ctx, sha)
	if err != nil {
		return "", fmt.Errorf("code %.12s…: %w", sha, err)
	}
	defer rc.Close()
	return s.unpackTo(root, sha, rc)
}

// unpackCode unpacks the canonical zip data of sha into the code cache.
func (s *Service) unpackCode(sha string, data []byte) (string, error) {
	mu := s.unpackLock(filepath.Join(s.cfg.CodeDir, sha))
	mu.Lock()
	defer mu.Unlock()
	return s.unpackTo(s.cfg.CodeDir, sha, bytes.NewReader(data))
}

// unpackTo unpacks the canonical zip r of sha into root/sha, through a
// temporary directory renamed into place, so that the directory is whole
// when it exists. What r holds must hash to sha: stores may be shared.
// The caller holds sha's unpack lock.
func (s *Service) unpackTo(root, sha string, r io.Reader) (string, error) {
	dir := filepath.Join(root, sha)
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(root, ".unpack-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	m, err := build.Unpack(r, tmp, build.Limits{
		ArchiveBytes: store.MaxBlobBytes, UnpackedBytes: max(s.cfg.Limits.UnpackedBytes, build.DefaultLimits.UnpackedBytes), Files: fn.MaxFiles,
	})
	if err != nil {
		return "", fmt.Errorf("unpack code %.12s…: %w", sha, err)
	}
	if m.SHA256 != sha {
		return "", fmt.Errorf("code %.12s… as stored does not match its hash: it will not run", sha)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	return dir, nil
}

// unpackLock is the lock of one unpacked directory.
func (s *Service) unpackLock(dir string) *sync.Mutex {
	v, _ := s.unpacking.LoadOrStore(dir, new(sync.Mutex))
	return v.(*sync.Mutex)
}

// Code returns what an instance of f runs: the directory of its code and
// those of its layers (uploaded ones first, then its built dependencies),
// unpacking or rebuilding what this node lacks. It is the engine's
// source of code.
func (s *Service) Code(ctx context.Context, f *fn.Function) (dir string, layers []string, err error) {
	if f.CodeInfo == nil {
		// Stored before code was kept as a blob: its files are inline.
		zip, m, err := packFiles(f.Files)
		if err != nil {
			return "", nil, err
		}
		dir, err := s.unpackCode(m.SHA256, zip)
		return dir, nil, err
	}
	if dir, err = s.CodeDir(ctx, f.CodeInfo.SHA256); err != nil {
		return "", nil, err
	}
	now := time.Now()
	_ = os.Chtimes(dir, now, now) // in use: Collect leaves it alone
	for _, l := range f.Layers {
		d, err := s.blobDir(ctx, s.cfg.LayerDir, l)
		if err != nil {
			return "", nil, fmt.Errorf("layer %.12s…: %w", l, err)
		}
		_ = os.Chtimes(d, now, now)
		layers = append(layers, d)
	}
	if key := f.CodeInfo.Layer; key != "" {
		d := ""
		if s.cfg.Builder != nil {
			d = s.cfg.Builder.Layer(key)
		}
		if d == "" {
			// Built on another node, or collected: build it again here.
			if d, err = s.rebuild(ctx, f, dir, key); err != nil {
				return "", nil, err
			}
		}
		layers = append(layers, d)
	}
	return dir, layers, nil
}

// rebuild builds f's dependencies on this node, where the layer key it
// was built into is missing.
func (s *Service) rebuild(ctx context.Context, f *fn.Function, dir, key string) (string, error) {
	if s.cfg.Builder == nil {
		return "", fmt.Errorf("function %q needs its dependencies built, and this server builds none", f.Name)
	}
	var log bytes.Buffer
	got, d, _, err := s.cfg.Builder.Build(ctx, f.Runtime, dir, f.Scripts(), &log)
	switch {
	case err != nil:
		return "", fmt.Errorf("rebuild the dependencies of %q on this server: %w", f.Name, err)
	case got != key:
		// The same code built to another key: the registry or the
		// interpreter changed since. What runs is what this node built.
		s.log.Warn("dependencies rebuilt to another layer", "function", f.Name, "was", key, "now", got)
	}
	return d, nil
}

// buildDeps builds the dependencies of f's code, unpacked at dir, and
// records how it went in f.BuildStatus, and the layer in f.CodeInfo. It
// returns the build's error, if any.
func (s *Service) buildDeps(ctx context.Context, f *fn.Function) error {
	now := time.Now().UTC()
	st := &fn.BuildStatus{State: fn.BuildReady, CodeSHA256: f.CodeInfo.SHA256, StartedAt: now, FinishedAt: now}
	f.BuildStatus = st
	f.CodeInfo.Layer = ""
	if s.cfg.Builder == nil {
		return nil
	}
	dir, err := s.CodeDir(ctx, f.CodeInfo.SHA256)
	if err != nil {
		return err
	}
	log := &buildLog{s: s, f: f}
	s.publishBuild(f, fn.BuildBuilding, "")
	s.building.Store(f.ID, &fn.BuildStatus{State: fn.BuildBuilding, CodeSHA256: st.CodeSHA256, StartedAt: st.StartedAt})
	defer s.building.Delete(f.ID)
	key, _, cached, err := s.cfg.Builder.Build(ctx, f.Runtime, dir, f.Scripts(), log)
	log.flush()
	st.FinishedAt = time.Now().UTC()
	st.Log = log.text()
	if err != nil {
		st.State, st.Error = fn.BuildFailed, fn.ScrubPaths(err.Error())
		s.log.Warn("build failed", "function", f.Name, "code", f.CodeInfo.SHA256[:12], "error", err)
		return fmt.Errorf("the build of %q failed: %s: %w", f.Name, st.Error, fn.ErrBuildFailed)
	}
	st.Layer, st.Cached = key, cached
	f.CodeInfo.Layer = key
	if key != "" {
		s.log.Info("dependencies built", "function", f.Name, "layer", key, "cached", cached, "took", st.FinishedAt.Sub(st.StartedAt).Round(time.Millisecond))
	}
	return nil
}

// buildDone tells the live stream how f's build ended, once what it
// reads from the function is stored.
func (s *Service) buildDone(f *fn.Function) {
	if s.cfg.Builder != nil && f.BuildStatus != nil {
		s.publishBuild(f, f.BuildStatus.State, f.BuildStatus.Error)
	}
}

func (s *Service) publishBuild(f *fn.Function, state, line string) {
	if s.cfg.Events != nil && f.ID != "" {
		s.cfg.Events.PublishBuild(f.ID, f.Name, state, line)
	}
}

// buildLog keeps a build's output (its first and last bytes when long)
// and sends each line to the live stream.
type buildLog struct {
	s       *Service
	f       *fn.Function
	mu      sync.Mutex
	head    []byte
	tail    []byte // a ring of the last bytes, once head is full
	dropped int64
	line    []byte
}

func (l *buildLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.keep(p)
	for _, c := range p {
		if c == '\n' {
			l.s.publishBuild(l.f, fn.BuildBuilding, string(l.line))
			l.line = l.line[:0]
		} else if len(l.line) < 4096 {
			l.line = append(l.line, c)
		}
	}
	return len(p), nil
}

func (l *buildLog) keep(p []byte) {
	const half = maxBuildLog / 2
	if n := min(half-len(l.head), len(p)); n > 0 {
		l.head = append(l.head, p[:n]...)
		p = p[n:]
	}
	l.tail = append(l.tail, p...)
	if over := len(l.tail) - half; over > 0 {
		l.dropped += int64(over)
		l.tail = append(l.tail[:0], l.tail[over:]...)
	}
}

func (l *buildLog) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.line) > 0 {
		l.s.publishBuild(l.f, fn.BuildBuilding, string(l.line))
		l.line = l.line[:0]
	}
}

func (l *buildLog) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dropped == 0 {
		return fn.ScrubPaths(string(l.head) + string(l.tail))
	}
	return fn.ScrubPaths(string(l.head) + fmt.Sprintf("\n… %d bytes left out …\n", l.dropped) + string(l.tail))
}

// errBuildFailed says why a function whose only code failed to build
// cannot run.
func errBuildFailed(f *fn.Function) error {
	msg := f.BuildStatus.Error
	if i := strings.IndexByte(msg, '\n'); i > 0 {
		msg = msg[:i]
	}
	return fmt.Errorf("function %q cannot run: the build of its code failed (%s); see its buildStatus, fix the code and deploy again: %w", f.Name, msg, fn.ErrConflict)
}

// buildFailed reports whether f's code never built: its last build, of
// the code it holds, failed.
func buildFailed(f *fn.Function) bool {
	b := f.BuildStatus
	return b != nil && b.State == fn.BuildFailed && f.CodeInfo != nil && b.CodeSHA256 == f.CodeInfo.SHA256
}

// OpenCode opens the stored code of f: the canonical zip, byte for byte
// what its instances unpack, and its size. The reader fails at its end if
// the bytes do not hash to the code's name.
func (s *Service) OpenCode(ctx context.Context, f *fn.Function) (io.ReadCloser, int64, error) {
	if f.CodeInfo == nil {
		zip, _, err := packFiles(f.Files)
		return io.NopCloser(bytes.NewReader(zip)), int64(len(zip)), err
	}
	return s.openBlob(ctx, f.CodeInfo.SHA256)
}

// openBlob opens a blob whose reader checks its hash at the end.
func (s *Service) openBlob(ctx context.Context, sha string) (io.ReadCloser, int64, error) {
	rc, size, err := s.cfg.Store.OpenBlob(ctx, sha)
	if err != nil {
		return nil, 0, err
	}
	return &checkedReader{rc: rc, sha: sha, h: sha256.New()}, size, nil
}

// checkedReader reads a blob and fails at its end if it does not hash to
// its name.
type checkedReader struct {
	rc  io.ReadCloser
	sha string
	h   hash.Hash
}

func (c *checkedReader) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	c.h.Write(p[:n])
	if err == io.EOF && hex.EncodeToString(c.h.Sum(nil)) != c.sha {
		return n, fmt.Errorf("blob %.12s… as stored does not match its hash", c.sha)
	}
	return n, err
}

func (c *checkedReader) Close() error { return c.rc.Close() }

// moduleSource reads the handler's module file of f's stored code, for
// the syntax check: the one file sure to be loaded.
func (s *Service) moduleSource(ctx context.Context, f *fn.Function) (map[string]string, error) {
	dir, err := s.CodeDir(ctx, f.CodeInfo.SHA256)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	for _, p := range f.ModuleFiles() {
		fi, err := root.Stat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if fi.Size() > fn.MaxCodeBytes {
			return nil, nil // too large to check here; loading it will tell
		}
		b, err := root.ReadFile(p)
		if err != nil {
			return nil, err
		}
		return map[string]string{p: string(b)}, nil
	}
	return nil, fn.Invalid("handler", fmt.Sprintf("module file %q is not among the files", f.ModuleFile()))
}

// Inline limits: code this small, all text, is shown inline in the
// function (and so edited as a files map); larger code is listed.
const (
	maxInlineBytes = 1 << 20
	maxInlineFiles = 200
)

// InlineFiles returns f's files as a files map when its code is small and
// all text, or nil.
func (s *Service) InlineFiles(ctx context.Context, f *fn.Function) fn.Files {
	c := f.CodeInfo
	if c == nil {
		return f.Files
	}
	if c.UnpackedSize > maxInlineBytes || len(c.Files) > maxInlineFiles {
		return nil
	}
	dir, err := s.CodeDir(ctx, c.SHA256)
	if err != nil {
		return nil
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil
	}
	defer root.Close()
	out := make(fn.Files, len(c.Files))
	for _, fi := range c.Files {
		if fi.Link != "" || fi.Mode&0o111 != 0 {
			return nil // a files map keeps neither links nor modes
		}
		b, err := root.ReadFile(fi.Path)
		if err != nil || !utf8.Valid(b) {
			return nil
		}
		out[fi.Path] = string(b)
	}
	return out
}

// PutLayer stores an uploaded layer (a zip or tar.gz of Lambda's layout:
// python/…, nodejs/node_modules/…) and returns its manifest; its SHA-256
// is the id functions name it by in "layers".
func (s *Service) PutLayer(ctx context.Context, r io.Reader) (*fn.CodeInfo, error) {
	if err := os.MkdirAll(s.cfg.LayerDir, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(s.cfg.LayerDir, ".in-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	files := filepath.Join(tmp, "files")
	if err := os.Mkdir(files, 0o755); err != nil {
		return nil, err
	}
	if _, err := build.Unpack(r, files, s.cfg.Limits); err != nil {
		return nil, err
	}
	m, err := s.storeTree(ctx, files, filepath.Join(tmp, "layer.zip"))
	if err != nil {
		return nil, fmt.Errorf("store layer: %w", err)
	}
	if err := s.place(s.cfg.LayerDir, m.SHA256, files); err != nil {
		return nil, err
	}
	s.log.Info("layer stored", "layer", m.SHA256, "bytes", m.Size, "files", len(m.Files))
	return codeInfo(m), nil
}

// OpenLayer opens an uploaded layer's zip, as OpenCode.
func (s *Service) OpenLayer(ctx context.Context, sha string) (io.ReadCloser, int64, error) {
	if !fn.IsSHA256(sha) {
		return nil, 0, fmt.Errorf("layer %q: %w", sha, fn.ErrNotFound)
	}
	return s.openBlob(ctx, sha)
}

// Limits are the archive limits code and layers are held to.
func (s *Service) Limits() build.Limits { return s.cfg.Limits }
