package image_test

import (
	"slices"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/image"
)

func TestParseLdd(t *testing.T) {
	for _, c := range []struct {
		name, out string
		want      []string
	}{
		{"one file", `	linux-vdso.so.1 (0x00007ffd5a7f6000)
	libm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x00007f2c0c0e1000)
	libfoo.so.1 => not found
	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2c0bf00000)
	/lib64/ld-linux-x86-64.so.2 (0x00007f2c0c1e2000)
`, []string{"/lib/x86_64-linux-gnu/libm.so.6", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"}},
		{"several files", `/usr/lib/python3.11/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so:
	linux-vdso.so.1 (0x00007ffc8e5d2000)
	libssl.so.3 => /lib/x86_64-linux-gnu/libssl.so.3 (0x00007f8a1c000000)
/bin/busybox:
	not a dynamic executable
/usr/lib/python3.11/lib-dynload/_json.cpython-311-x86_64-linux-gnu.so:
	statically linked
`, []string{"/lib/x86_64-linux-gnu/libssl.so.3"}},
		{"static", "\tnot a dynamic executable\n", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := image.ParseLdd([]byte(c.out)); !slices.Equal(got, c.want) {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}
