package transfer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/store"
)

// Format and Version are what the header line says. Version 2 added
// published versions and aliases, version 3 secrets (an export without
// secrets says 2, so that older builds read it); Import reads every older
// version too.
const (
	Format  = "nimbus-export"
	Version = 3
)

// Record is one line of the stream: exactly one field is set.
type Record struct {
	Format    string        `json:"format,omitempty"`
	Version   int           `json:"version,omitempty"`
	Function  *fn.Function  `json:"function,omitempty"`
	Execution *fn.Execution `json:"execution,omitempty"`
	// PublishedVersion is a published version of the function before it
	// (named so apart from the header's version), Alias one of its
	// aliases (format version 2).
	PublishedVersion *fn.Version `json:"publishedVersion,omitempty"`
	Alias            *fn.Alias   `json:"alias,omitempty"`
	// Blob is stored code or an uploaded layer, written before the first
	// function or version that uses it. Layers built from dependencies
	// are not exported: the destination builds them again.
	Blob *Blob `json:"blob,omitempty"`
	// Secret is a secret, sealed for the destination's key-encryption
	// key (export --with-secrets only): never in plain text.
	Secret *Secret `json:"secret,omitempty"`
}

// Secret is a secret as exported: store.SecretRecord.
type Secret struct {
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Sealed      []byte    `json:"sealed"`
	KEKID       string    `json:"kekId"`
	Version     int       `json:"version"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

// Blob is a stored blob: its SHA-256 and its bytes (base64 in JSON).
type Blob struct {
	SHA256 string `json:"sha256"`
	Data   []byte `json:"data"`
}

// Options say what to move and how.
type Options struct {
	// Executions exports each function's execution records too (import
	// takes whatever the stream holds).
	Executions bool
	// SkipExisting makes import leave alone a function whose id or name the
	// destination already has, and its records, instead of failing.
	SkipExisting bool
	// BatchSize is how many records one insert writes (500).
	BatchSize int
	// PageSize is how many records export reads per history page
	// (store.MaxExecLimit).
	PageSize int
	// Reseal, when set, makes export write every secret, sealed again by
	// it for the destination's key-encryption key. Without it, no secret
	// is exported (functions keep their references by name).
	Reseal func(*store.SecretRecord) (*store.SecretRecord, error)
}

// Stats count what was moved.
type Stats struct {
	Functions  int `json:"functions"`
	Versions   int `json:"versions"`
	Aliases    int `json:"aliases"`
	Executions int `json:"executions"`
	Skipped    int `json:"skipped"` // functions left alone (SkipExisting)
	Secrets    int `json:"secrets"`
}

func (s Stats) String() string {
	out := fmt.Sprintf("%d functions", s.Functions)
	if s.Versions > 0 || s.Aliases > 0 {
		out += fmt.Sprintf(" (with %d versions and %d aliases)", s.Versions, s.Aliases)
	}
	out += fmt.Sprintf(", %d executions", s.Executions)
	if s.Secrets > 0 {
		out += fmt.Sprintf(", %d secrets", s.Secrets)
	}
	if s.Skipped > 0 {
		out += fmt.Sprintf(" (%d functions skipped: they already exist)", s.Skipped)
	}
	return out
}

// Export writes every function of src, ordered by name, each followed by
// its published versions, oldest first, its aliases, by name, and, with
// opt.Executions, all of its execution records, newest first.
func Export(ctx context.Context, src store.Store, w io.Writer, opt Options) (Stats, error) {
	var st Stats
	bw := bufio.NewWriterSize(w, 256<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	version := 2 // what older builds read, when there are no secrets
	if opt.Reseal != nil {
		version = Version
	}
	if err := enc.Encode(Record{Format: Format, Version: version}); err != nil {
		return st, fmt.Errorf("export: %w", err)
	}
	if opt.Reseal != nil {
		n, err := exportSecrets(ctx, src, enc, opt.Reseal)
		if err != nil {
			return st, err
		}
		st.Secrets = n
	}
	fns, err := src.ListFunctions(ctx)
	if err != nil {
		return st, fmt.Errorf("export: %w", err)
	}
	blobs := map[string]bool{}
	// writeBlobs writes the blobs f uses that the stream has not had.
	writeBlobs := func(f *fn.Function, what string) error {
		shas := slices.Clone(f.Layers)
		if f.CodeInfo != nil {
			shas = append(shas, f.CodeInfo.SHA256)
		}
		for _, sha := range shas {
			if blobs[sha] {
				continue
			}
			data, err := readBlob(ctx, src, sha)
			if err != nil {
				return fmt.Errorf("export: code of %s: %w", what, err)
			}
			if err := enc.Encode(Record{Blob: &Blob{SHA256: sha, Data: data}}); err != nil {
				return fmt.Errorf("export: %w", err)
			}
			blobs[sha] = true
		}
		return nil
	}
	for _, f := range fns {
		if err := writeBlobs(f, f.Name); err != nil {
			return st, err
		}
		if err := enc.Encode(Record{Function: f}); err != nil {
			return st, fmt.Errorf("export: %w", err)
		}
		st.Functions++
		versions, err := src.ListVersions(ctx, f.ID)
		if err != nil {
			return st, fmt.Errorf("export: versions of %s: %w", f.Name, err)
		}
		for _, v := range versions {
			// A version may run code the draft no longer does.
			if err := writeBlobs(v.Function, fmt.Sprintf("%s version %d", f.Name, v.Version)); err != nil {
				return st, err
			}
			if err := enc.Encode(Record{PublishedVersion: v}); err != nil {
				return st, fmt.Errorf("export: %w", err)
			}
			st.Versions++
		}
		aliases, err := src.ListAliases(ctx, f.ID)
		if err != nil {
			return st, fmt.Errorf("export: aliases of %s: %w", f.Name, err)
		}
		for _, a := range aliases {
			if err := enc.Encode(Record{Alias: a}); err != nil {
				return st, fmt.Errorf("export: %w", err)
			}
			st.Aliases++
		}
		if !opt.Executions {
			continue
		}
		q := store.ExecQuery{Limit: opt.PageSize}
		if q.Limit <= 0 {
			q.Limit = store.MaxExecLimit
		}
		for {
			page, err := src.ListExecutions(ctx, f.ID, q)
			if err != nil {
				return st, fmt.Errorf("export: executions of %s: %w", f.Name, err)
			}
			for _, e := range page {
				// History pages leave events out: read each record whole.
				full, err := src.GetExecution(ctx, f.ID, e.ID)
				if errors.Is(err, fn.ErrNotFound) {
					continue // pruned meanwhile
				}
				if err != nil {
					return st, fmt.Errorf("export: execution %s of %s: %w", e.ID, f.Name, err)
				}
				if err := enc.Encode(Record{Execution: full}); err != nil {
					return st, fmt.Errorf("export: %w", err)
				}
				st.Executions++
			}
			if len(page) < q.PageSize() {
				break
			}
			q.Before = page[len(page)-1].ID
		}
	}
	if err := bw.Flush(); err != nil {
		return st, fmt.Errorf("export: %w", err)
	}
	return st, nil
}

// Import reads a stream that Export wrote (of this format version or an
// older one) and creates its functions, versions, aliases and records in
// dst. A function whose id or name dst already has fails the
// import with fn.ErrConflict, unless opt.SkipExisting. What was imported
// before a failure stays.
func Import(ctx context.Context, dst store.Store, r io.Reader, opt Options) (Stats, error) {
	var st Stats
	batchSize := opt.BatchSize
	if batchSize <= 0 {
		batchSize = 500
	}
	var (
		batch   []*fn.Execution
		current string              // the function whose records may follow
		skipped = map[string]bool{} // function id → left alone
		known   = map[string]bool{} // function ids seen in the stream
		// The function whose versions and aliases may follow: they come
		// right after it, before its records.
		owner string
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := dst.InsertExecutions(ctx, batch); err != nil {
			return fmt.Errorf("import: executions of function %s: %w", batch[0].FunctionID, err)
		}
		st.Executions += len(batch)
		batch = batch[:0]
		return nil
	}

	dec := json.NewDecoder(bufio.NewReaderSize(r, 256<<10))
	for line := 1; ; line++ {
		var rec Record
		err := dec.Decode(&rec)
		if errors.Is(err, io.EOF) {
			break
		}
		var (
			syntaxErr *json.SyntaxError
			typeErr   *json.UnmarshalTypeError
		)
		switch {
		case errors.As(err, &syntaxErr) || errors.As(err, &typeErr) || errors.Is(err, io.ErrUnexpectedEOF):
			return st, fmt.Errorf("import: record %d: %w", line, fn.Invalid("input", "not a line of a nimbus export: "+err.Error()))
		case err != nil:
			return st, fmt.Errorf("import: read: %w", err)
		}
		switch {
		case rec.Format != "":
			if line != 1 || rec.Format != Format {
				return st, fmt.Errorf("import: record %d: %w", line, fn.Invalid("input", fmt.Sprintf("unexpected header %q", rec.Format)))
			}
			if rec.Version > Version {
				return st, fmt.Errorf("import: %w", fn.Invalid("input", fmt.Sprintf("export format version %d is newer than this build's %d", rec.Version, Version)))
			}
		case rec.Secret != nil:
			if err := importSecret(ctx, dst, rec.Secret, opt.SkipExisting); err != nil {
				return st, fmt.Errorf("import: record %d: %w", line, err)
			}
			st.Secrets++
		case rec.Blob != nil:
			if err := dst.PutBlob(ctx, rec.Blob.SHA256, bytes.NewReader(rec.Blob.Data)); err != nil { // checks the hash
				return st, fmt.Errorf("import: record %d: blob: %w", line, err)
			}
		case rec.Function != nil:
			if err := flush(); err != nil {
				return st, err
			}
			f := rec.Function
			if f.ID == "" || f.Name == "" {
				return st, fmt.Errorf("import: record %d: %w", line, fn.Invalid("function", "without id or name"))
			}
			// Nothing read is trusted: a function the API would refuse
			// (a file named ../x, say) is refused here too, by the same
			// rules, so that no import can store it.
			check := *f
			if err := check.Normalize(fn.Defaults{TimeoutMs: fn.MaxTimeoutMs, MemoryMB: fn.MinMemoryMB}); err != nil {
				return st, fmt.Errorf("import: record %d: function %q: %w", line, f.Name, err)
			}
			known[f.ID], current, owner = true, f.ID, f.ID
			err := dst.CreateFunction(ctx, f)
			switch {
			case err == nil:
				st.Functions++
			case errors.Is(err, fn.ErrConflict) && opt.SkipExisting:
				skipped[f.ID] = true
				st.Skipped++
			case errors.Is(err, fn.ErrConflict):
				return st, fmt.Errorf("import: function %q (%s) already exists in the destination (skip such functions with --skip-existing): %w", f.Name, f.ID, err)
			default:
				return st, fmt.Errorf("import: function %q: %w", f.Name, err)
			}
		case rec.PublishedVersion != nil:
			v := rec.PublishedVersion
			if err := checkVersion(v, owner); err != nil {
				return st, fmt.Errorf("import: record %d: %w", line, err)
			}
			if skipped[v.ID] {
				continue
			}
			if err := dst.CreateVersion(ctx, v); err != nil {
				return st, fmt.Errorf("import: version %d of function %q: %w", v.Version, v.Name, err)
			}
			st.Versions++
		case rec.Alias != nil:
			a := rec.Alias
			if a.FunctionID == "" || a.FunctionID != owner {
				return st, fmt.Errorf("import: record %d: %w", line, fn.Invalid("alias",
					fmt.Sprintf("%q of function %s does not follow its function", a.Name, a.FunctionID)))
			}
			check := *a
			if err := check.Normalize(); err != nil {
				return st, fmt.Errorf("import: record %d: alias %q: %w", line, a.Name, err)
			}
			if skipped[a.FunctionID] {
				continue
			}
			if err := dst.CreateAlias(ctx, a); err != nil {
				return st, fmt.Errorf("import: alias %q of function %s: %w", a.Name, a.FunctionID, err)
			}
			st.Aliases++
		case rec.Execution != nil:
			owner = "" // versions and aliases come before records
			e := rec.Execution
			if !known[e.FunctionID] {
				return st, fmt.Errorf("import: record %d: %w", line, fn.Invalid("execution",
					fmt.Sprintf("%s belongs to function %s, which the stream has not had", e.ID, e.FunctionID)))
			}
			if skipped[e.FunctionID] {
				continue
			}
			if e.FunctionID != current {
				if err := flush(); err != nil {
					return st, err
				}
				current = e.FunctionID
			}
			batch = append(batch, e)
			if len(batch) >= batchSize {
				if err := flush(); err != nil {
					return st, err
				}
			}
		default:
			return st, fmt.Errorf("import: record %d: %w", line, fn.Invalid("input", "neither a function nor an execution, version, alias or blob"))
		}
	}
	return st, flush()
}

// checkVersion checks a version read from a stream as Import checks
// functions, and that it follows its function (owner).
func checkVersion(v *fn.Version, owner string) error {
	if v.Function == nil || v.ID == "" {
		return fn.Invalid("publishedVersion", "without its function")
	}
	if v.ID != owner {
		return fn.Invalid("publishedVersion", fmt.Sprintf("%d of function %s does not follow its function", v.Version, v.ID))
	}
	if v.Version < 1 {
		return fn.Invalid("publishedVersion", fmt.Sprintf("%d is not a version number", v.Version))
	}
	if len(v.Description) > fn.MaxDescriptionLen {
		return fn.Invalid("description", fmt.Sprintf("at most %d bytes", fn.MaxDescriptionLen))
	}
	check := *v.Function
	if err := check.Normalize(fn.Defaults{TimeoutMs: fn.MaxTimeoutMs, MemoryMB: fn.MinMemoryMB}); err != nil {
		return fmt.Errorf("version %d of function %q: %w", v.Version, v.Name, err)
	}
	return nil
}

// Copy moves src's functions (and, with opt.Executions, their records)
// into dst, as Export and Import would through a pipe.
func Copy(ctx context.Context, src, dst store.Store, opt Options) (Stats, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	exported := make(chan error, 1)
	go func() {
		_, err := Export(ctx, src, pw, opt)
		pw.CloseWithError(err)
		exported <- err
	}()
	st, err := Import(ctx, dst, pr, opt)
	pr.CloseWithError(errImportStopped)
	cancel()
	// An export that failed by itself explains an import that failed.
	if xerr := <-exported; xerr != nil && !errors.Is(xerr, errImportStopped) && !errors.Is(xerr, context.Canceled) {
		return st, xerr
	}
	return st, err
}

var errImportStopped = errors.New("import stopped")

// readBlob reads a whole blob: an export line holds it.
func readBlob(ctx context.Context, src store.Store, sha string) ([]byte, error) {
	rc, _, err := src.OpenBlob(ctx, sha)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// exportSecrets writes every secret of src, sealed again by reseal.
func exportSecrets(ctx context.Context, src store.Store, enc *json.Encoder, reseal func(*store.SecretRecord) (*store.SecretRecord, error)) (int, error) {
	as, ok := src.(store.AuthStore)
	if !ok {
		return 0, fmt.Errorf("export: the store keeps no secrets")
	}
	recs, err := as.ListSecrets(ctx)
	if err != nil {
		return 0, fmt.Errorf("export: secrets: %w", err)
	}
	for _, orig := range recs {
		r, err := reseal(orig)
		if err != nil {
			return 0, fmt.Errorf("export: secret %q: %w", orig.Name, err)
		}
		sec := &Secret{Name: r.Name, Description: r.Description, Sealed: r.Sealed, KEKID: r.KEKID, Version: r.Version, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
		if err := enc.Encode(Record{Secret: sec}); err != nil {
			return 0, err
		}
	}
	return len(recs), nil
}

// importSecret stores a sealed secret as it came: the destination opens
// it with its key-encryption key (the export sealed it for that key).
func importSecret(ctx context.Context, dst store.Store, s *Secret, skipExisting bool) error {
	as, ok := dst.(store.AuthStore)
	if !ok {
		return fmt.Errorf("the store keeps no secrets")
	}
	if err := fn.ValidSecretName(s.Name); err != nil {
		return err
	}
	if len(s.Sealed) == 0 || s.KEKID == "" || s.Version < 1 {
		return fn.Invalid("secret", fmt.Sprintf("secret %q: not sealed, or without a version", s.Name))
	}
	err := as.CreateSecret(ctx, &store.SecretRecord{Name: s.Name, Description: s.Description, Sealed: s.Sealed, KEKID: s.KEKID,
		Version: s.Version, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt})
	if errors.Is(err, fn.ErrConflict) && skipExisting {
		return nil
	}
	if err != nil {
		return fmt.Errorf("secret %q: %w", s.Name, err)
	}
	return nil
}
