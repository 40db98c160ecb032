package lambda

import (
	"errors"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

func TestParseFunction(t *testing.T) {
	a := arns{region: "eu-west-3", account: "123456789012"}
	for _, tc := range []struct {
		in, name, qualifier string
		err                 error // nil, fn.ErrNotFound or fn.ErrInvalid-like (awsError)
	}{
		{in: "hello", name: "hello"},
		{in: "hello:live", name: "hello", qualifier: "live"},
		{in: "hello:3", name: "hello", qualifier: "3"},
		{in: "hello:$LATEST", name: "hello", qualifier: "$LATEST"},
		{in: "123456789012:function:hello", name: "hello"},
		{in: "123456789012:function:hello:2", name: "hello", qualifier: "2"},
		{in: "arn:aws:lambda:eu-west-3:123456789012:function:hello", name: "hello"},
		{in: "arn:aws:lambda:eu-west-3:123456789012:function:hello:live", name: "hello", qualifier: "live"},
		{in: "arn:aws:lambda:us-east-1:123456789012:function:hello", err: fn.ErrNotFound},
		{in: "arn:aws:lambda:eu-west-3:000000000000:function:hello", err: fn.ErrNotFound},
		{in: "000000000000:function:hello", err: fn.ErrNotFound},
		{in: "arn:aws:s3:::bucket", err: errInvalid},
		{in: "hello:a:b", err: errInvalid},
		{in: "hello:0", err: errInvalid},
		{in: "", err: errInvalid},
	} {
		name, q, err := a.parseFunction(tc.in)
		switch {
		case tc.err == nil && (err != nil || name != tc.name || q != tc.qualifier):
			t.Errorf("%q: %q %q %v, want %q %q", tc.in, name, q, err, tc.name, tc.qualifier)
		case tc.err == fn.ErrNotFound && !errors.Is(err, fn.ErrNotFound):
			t.Errorf("%q: %v, want not found", tc.in, err)
		case tc.err == errInvalid && !isInvalidParameter(err):
			t.Errorf("%q: %v, want InvalidParameterValueException", tc.in, err)
		}
	}
	if got := a.qualified("hello", "live"); got != "arn:aws:lambda:eu-west-3:123456789012:function:hello:live" {
		t.Errorf("qualified: %s", got)
	}
}

var errInvalid = errors.New("invalid parameter")

func isInvalidParameter(err error) bool { return errors.Is(err, fn.ErrInvalid) }

func TestParseLayer(t *testing.T) {
	a := arns{region: "us-east-1", account: "000000000000"}
	id := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for in, ok := range map[string]bool{
		id: true,
		"arn:aws:lambda:us-east-1:000000000000:layer:" + id + ":1": true,
		"arn:aws:lambda:us-east-1:000000000000:layer:" + id:        true,
		"arn:aws:lambda:eu-west-1:000000000000:layer:" + id + ":1": false,
		"arn:aws:lambda:us-east-1:000000000000:layer:my-layer:3":   false,
		"not-a-layer": false,
	} {
		got, err := a.parseLayer(in)
		if ok != (err == nil) || (ok && got != id) {
			t.Errorf("%q: %q, %v", in, got, err)
		}
	}
	if got := a.layer(id); got != "arn:aws:lambda:us-east-1:000000000000:layer:"+id+":1" {
		t.Errorf("layer ARN %s", got)
	}
}
