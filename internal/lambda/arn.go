package lambda

import (
	"fmt"
	"strings"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// Defaults of the region and account id in ARNs.
const (
	DefaultRegion  = "us-east-1"
	DefaultAccount = "000000000000"
)

// arns makes and reads the ARNs of this server's functions and layers:
// arn:aws:lambda:{region}:{account}:function:{name}[:{qualifier}].
type arns struct{ region, account string }

func (a arns) function(name string) string {
	return "arn:aws:lambda:" + a.region + ":" + a.account + ":function:" + name
}

// qualified is the ARN of a version or alias ("" and $LATEST: the
// function's).
func (a arns) qualified(name, qualifier string) string {
	if qualifier == "" {
		return a.function(name)
	}
	return a.function(name) + ":" + qualifier
}

// of is the ARN of f as it runs: a version's is qualified by its number.
func (a arns) of(f *fn.Function) string {
	if f.Version > 0 {
		return a.qualified(f.Name, f.VersionName())
	}
	return a.function(f.Name)
}

// layer is the ARN of an uploaded layer: its name is its id (the SHA-256
// of its content), and, content-addressed, it has only ever version 1.
func (a arns) layer(id string) string {
	return "arn:aws:lambda:" + a.region + ":" + a.account + ":layer:" + id + ":1"
}

// parseFunction reads what a request names a function by, in any of
// Lambda's forms: a name ("my-function"), a name and qualifier
// ("my-function:v1"), a partial ARN ("123456789012:function:my-function")
// or an ARN, each with or without a qualifier. An ARN of another region
// or account names no function here.
func (a arns) parseFunction(s string) (name, qualifier string, err error) {
	orig := s
	if rest, ok := strings.CutPrefix(s, "arn:"); ok {
		parts := strings.SplitN(rest, ":", 5) // partition, service, region, account, "function:…"
		if len(parts) != 5 || !strings.HasPrefix(parts[0], "aws") || parts[1] != "lambda" {
			return "", "", invalidParameter(fmt.Sprintf("%q is not a function ARN (arn:aws:lambda:%s:%s:function:NAME)", orig, a.region, a.account))
		}
		if parts[2] != a.region || parts[3] != a.account {
			return "", "", notFound("Function", orig)
		}
		s = parts[3] + ":" + parts[4]
	}
	if account, rest, ok := strings.Cut(s, ":function:"); ok {
		if account != a.account {
			return "", "", notFound("Function", orig)
		}
		s = rest
	}
	name, qualifier = fn.ParseQualifier(s)
	if name == "" || strings.Contains(qualifier, ":") {
		return "", "", invalidParameter(fmt.Sprintf("%q is not a function name or ARN", orig))
	}
	if err := fn.CheckQualifier("qualifier", qualifier); err != nil {
		return "", "", invalidParameter(err.Error())
	}
	return name, qualifier, nil
}

// parseLayer reads a layer a function names: a layer ARN whose name is
// a layer id (arn:aws:lambda:{region}:{account}:layer:{id}[:{version}]),
// or the id alone, as POST /api/layers answers it.
func (a arns) parseLayer(s string) (string, error) {
	id := s
	if rest, ok := strings.CutPrefix(s, "arn:"); ok {
		parts := strings.Split(rest, ":")
		if len(parts) < 6 || len(parts) > 7 || parts[1] != "lambda" || parts[4] != "layer" {
			return "", invalidParameter(fmt.Sprintf("%q is not a layer ARN (arn:aws:lambda:%s:%s:layer:LAYER_ID:1)", s, a.region, a.account))
		}
		if parts[2] != a.region || parts[3] != a.account {
			return "", invalidParameter(fmt.Sprintf("layer %q is not of this server's region and account (%s, %s)", s, a.region, a.account))
		}
		id = parts[5]
	}
	if !fn.IsSHA256(id) {
		return "", invalidParameter(fmt.Sprintf("layer %q: Nimbus layers are named by their id, the sha256 POST /api/layers answers (as arn:aws:lambda:%s:%s:layer:ID:1 or the id alone)", s, a.region, a.account))
	}
	return id, nil
}
