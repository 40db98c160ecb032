package api

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// Archive media types: the body of PUT /api/functions/{id}/code and
// POST /api/layers, and the archive part of a multipart create. Which of
// zip or tar.gz it is, is read from its bytes.
var archiveTypes = []string{"application/zip", "application/gzip", "application/x-gzip", "application/x-tar", "application/octet-stream"}

// archiveLimit bounds an archive body: the archive limit.
func (s *Server) archiveLimit() int64 { return s.cfg.Functions.Limits().ArchiveBytes }

// archiveBody is an archive request body, read as a stream by the
// unpacking (which spools what it must to a file): never whole in memory.
// More than the archive limit fails the read with 413.
func (s *Server) archiveBody(w http.ResponseWriter, body io.ReadCloser) io.Reader {
	return http.MaxBytesReader(w, body, s.archiveLimit())
}

// putCode serves PUT /api/functions/{id}/code: the body, a zip or tar.gz
// archive, replaces the function's code; ?handler= may change its handler
// with it.
func (s *Server) putCode(w http.ResponseWriter, r *http.Request) {
	f, changed, err := s.cfg.Functions.Update(r.Context(), r.PathValue("id"), func(f *fn.Function) error {
		f.Code, f.Files, f.ZipFile = "", nil, nil
		f.Archive = s.archiveBody(w, r.Body)
		if h := r.URL.Query().Get("handler"); h != "" {
			f.Handler = h
		}
		return nil
	})
	if err != nil {
		writeError(w, err)
		return
	}
	v := s.view(r, f)
	if changed {
		v.Warnings = s.cfg.Functions.Warnings(r.Context(), f)
	}
	writeJSON(w, http.StatusOK, v)
}

// getCode serves GET /api/functions/{id}/code: the code as the canonical
// zip its instances unpack.
func (s *Server) getCode(w http.ResponseWriter, r *http.Request) {
	f, err := s.cfg.Functions.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	zip, size, err := s.cfg.Functions.OpenCode(r.Context(), f)
	if err != nil {
		writeError(w, err)
		return
	}
	defer zip.Close()
	s.writeZip(w, r, f.Name+".zip", zip, size)
}

// writeZip answers with a zip streamed from zip. A zip that fails midway
// (its hash does not match) aborts the response: the client sees it cut,
// never a whole-looking wrong file.
func (s *Server) writeZip(w http.ResponseWriter, r *http.Request, name string, zip io.Reader, size int64) {
	h := w.Header()
	h.Set("Content-Type", "application/zip")
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := io.Copy(w, zip); err != nil {
		s.log.Warn("code download cut", "name", name, "error", err)
		panic(http.ErrAbortHandler)
	}
}

// createFromMultipart reads a multipart create: a "function" part of JSON
// (as POST /api/functions takes) and an "archive" part with its code.
func (s *Server) createFromMultipart(w http.ResponseWriter, r *http.Request) (*fn.Function, error) {
	r.Body = http.MaxBytesReader(w, r.Body, s.archiveLimit()+1<<20)
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, fn.Invalid("body", "not a multipart form: "+err.Error())
	}
	var f *fn.Function
	var archive *os.File
	defer func() {
		if archive != nil && (f == nil || f.Archive == nil) {
			archive.Close()
		}
	}()
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fn.Invalid("body", "bad multipart form: "+err.Error())
		}
		switch part.FormName() {
		case "function":
			if f != nil {
				return nil, fn.Invalid("function", "given twice")
			}
			b, err := io.ReadAll(io.LimitReader(part, s.cfg.MaxBodyBytes+1))
			if err != nil {
				return nil, err
			}
			if int64(len(b)) > s.cfg.MaxBodyBytes {
				return nil, fmt.Errorf("the function part is larger than %d bytes: %w", s.cfg.MaxBodyBytes, fn.ErrTooLarge)
			}
			if err := checkDepth(b); err != nil {
				return nil, err
			}
			f = new(fn.Function)
			if err := fn.UnmarshalStrict(b, f); err != nil {
				if errors.Is(err, fn.ErrInvalid) {
					return nil, err
				}
				return nil, fn.Invalid("function", "not valid JSON for a function: "+err.Error())
			}
		case "archive":
			if archive != nil {
				return nil, fn.Invalid("archive", "given twice")
			}
			// Parts come in order: the archive waits in a file (unlinked at
			// once) while the rest of the form is read.
			if archive, err = os.CreateTemp("", "nimbus-upload-"); err != nil {
				return nil, err
			}
			os.Remove(archive.Name())
			n, err := io.Copy(archive, io.LimitReader(part, s.archiveLimit()+1))
			if err != nil {
				return nil, err
			}
			if n > s.archiveLimit() {
				return nil, fmt.Errorf("the archive is larger than %d bytes: %w", s.archiveLimit(), fn.ErrTooLarge)
			}
			if _, err := archive.Seek(0, io.SeekStart); err != nil {
				return nil, err
			}
		default:
			return nil, fn.Invalid("body", fmt.Sprintf("unknown part %q: send \"function\" (JSON) and \"archive\"", part.FormName()))
		}
	}
	if f == nil {
		return nil, fn.Invalid("function", `is required: a part named "function" with the function's JSON`)
	}
	if archive != nil {
		if f.Code != "" || len(f.Files) > 0 || len(f.ZipFile) > 0 {
			return nil, fn.Invalid("archive", "give the code once: in the archive part, or in the function")
		}
		f.Archive = archive
	}
	return f, nil
}

// layerView is an uploaded layer as POST /api/layers answers.
type layerView struct {
	ID string `json:"id"`
	*fn.CodeInfo
}

// postLayer serves POST /api/layers: the body, a zip or tar.gz of
// Lambda's layer layout, is stored; its id goes in a function's "layers".
func (s *Server) postLayer(w http.ResponseWriter, r *http.Request) {
	info, err := s.cfg.Functions.PutLayer(r.Context(), s.archiveBody(w, r.Body))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, layerView{ID: info.SHA256, CodeInfo: info})
}

// getLayer serves GET /api/layers/{id}: the layer's zip.
func (s *Server) getLayer(w http.ResponseWriter, r *http.Request) {
	zip, size, err := s.cfg.Functions.OpenLayer(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	defer zip.Close()
	s.writeZip(w, r, r.PathValue("id")+".zip", zip, size)
}
