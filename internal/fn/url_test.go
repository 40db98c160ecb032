package fn_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

func TestNormalizeURL(t *testing.T) {
	f := &fn.Function{Name: "web", Runtime: "python", Code: "def handler(e, c): return 1",
		URL: &fn.URLConfig{Enabled: true, CORS: &fn.CORS{
			AllowOrigins: []string{"HTTPS://App.Example.com/", "*"}, AllowMethods: []string{"get", "*"},
			AllowHeaders: []string{"Content-Type"}, ExposeHeaders: []string{"X-Id"}, MaxAge: 60,
		}}}
	if err := f.Normalize(defaults); err != nil {
		t.Fatal(err)
	}
	c := f.URL.CORS
	if f.URL.Auth != fn.URLAuthKey || f.URL.Public() ||
		!slices.Equal(c.AllowOrigins, []string{"https://app.example.com", "*"}) || !slices.Equal(c.AllowMethods, []string{"GET", "*"}) ||
		!slices.Equal(c.AllowHeaders, []string{"content-type"}) || !slices.Equal(c.ExposeHeaders, []string{"x-id"}) {
		t.Fatalf("normalized url: %+v cors %+v", f.URL, c)
	}

	for _, tc := range []struct {
		name, field string
		url         fn.URLConfig
	}{
		{"unknown auth", "url.auth", fn.URLConfig{Auth: "iam"}},
		{"origin with a path", "url.cors.allowOrigins", fn.URLConfig{CORS: &fn.CORS{AllowOrigins: []string{"https://a.example/x"}}}},
		{"origin without scheme", "url.cors.allowOrigins", fn.URLConfig{CORS: &fn.CORS{AllowOrigins: []string{"a.example"}}}},
		{"credentials for any origin", "url.cors.allowCredentials", fn.URLConfig{CORS: &fn.CORS{AllowOrigins: []string{"*"}, AllowCredentials: true}}},
		{"bad method", "url.cors.allowMethods", fn.URLConfig{CORS: &fn.CORS{AllowMethods: []string{"GE T"}}}},
		{"bad header", "url.cors.allowHeaders", fn.URLConfig{CORS: &fn.CORS{AllowHeaders: []string{"a:b"}}}},
		{"max age", "url.cors.maxAge", fn.URLConfig{CORS: &fn.CORS{MaxAge: fn.MaxCORSMaxAge + 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := tc.url
			f := &fn.Function{Name: "web", Runtime: "python", Code: "def handler(e, c): return 1", URL: &u}
			var fe *fn.FieldError
			if err := f.Normalize(defaults); !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("Normalize = %v, want an error of field %s", err, tc.field)
			}
		})
	}
}
