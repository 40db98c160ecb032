package web

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
)

//go:embed static
var static embed.FS

// UI serves the embedded assets. Its pages are client-side routes under
// "/#/…", so the only paths it has are "/" (index.html) and its files.
type UI struct {
	files fs.FS
	serve http.Handler
}

// Handler returns the UI. It answers only the paths it Has; the server
// answers the others (404) in the API's way.
func Handler() *UI {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err)
	}
	return &UI{files: sub, serve: http.FileServer(http.FS(sub))}
}

// Has reports whether p (a URL path) is one of the UI's: "/" or one of
// its files.
func (u *UI) Has(p string) bool {
	if p == "/" {
		return true
	}
	name := path.Clean(p)
	if len(name) < 2 || name[0] != '/' {
		return false
	}
	st, err := fs.Stat(u.files, name[1:])
	return err == nil && !st.IsDir()
}

func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !u.Has(r.URL.Path) {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'")
	w.Header().Set("Cache-Control", "no-cache")
	if r.URL.Path == "/" {
		http.ServeFileFS(w, r, u.files, "index.html")
		return
	}
	u.serve.ServeHTTP(w, r)
}

// Static is the UI's files, under static/.
func Static() fs.FS { return static }
