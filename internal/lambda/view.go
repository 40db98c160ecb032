package lambda

import (
	"encoding/base64"
	"encoding/hex"
	goruntime "runtime"
	"strconv"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// functionConfiguration is Lambda's FunctionConfiguration: a function,
// version or the draft ($LATEST) as GetFunctionConfiguration answers.
type functionConfiguration struct {
	FunctionName           string
	FunctionArn            string
	Runtime                string
	Handler                string
	CodeSize               int64
	Description            string
	Timeout                int // seconds
	MemorySize             int // MB
	LastModified           string
	CodeSha256             string
	Version                string
	Environment            *environment `json:",omitempty"`
	Layers                 []layerRef   `json:",omitempty"`
	State                  string
	StateReason            string `json:",omitempty"`
	StateReasonCode        string `json:",omitempty"`
	LastUpdateStatus       string
	LastUpdateStatusReason string `json:",omitempty"`
	PackageType            string
	Architectures          []string
	RevisionId             string
}

type environment struct {
	Variables map[string]string
}

type layerRef struct {
	Arn string
}

// lastModified is Lambda's time format: 2024-05-01T12:00:00.000+0000.
const lastModified = "2006-01-02T15:04:05.000-0700"

// configuration is f as Lambda shows it. Timeout is rounded up to whole
// seconds; Runtime is Nimbus's name for it ("python", "nodejs"): the
// version of the interpreter is the server's, whatever was asked for.
// CodeSha256 is the SHA-256 of the code as Nimbus stores it (its
// canonical zip), base64 as Lambda writes it.
func (h *Handler) configuration(f *fn.Function, description string) *functionConfiguration {
	c := &functionConfiguration{
		FunctionName:     f.Name,
		FunctionArn:      h.arns.of(f),
		Runtime:          f.Runtime,
		Handler:          f.Handler,
		Description:      description,
		Timeout:          (f.Timeout + 999) / 1000,
		MemorySize:       f.Memory,
		LastModified:     f.UpdatedAt.UTC().Format(lastModified),
		Version:          f.VersionName(),
		State:            "Active",
		LastUpdateStatus: "Successful",
		PackageType:      "Zip",
		Architectures:    []string{architecture()},
		RevisionId:       strconv.Itoa(f.Revision),
	}
	if f.CodeInfo != nil {
		c.CodeSize = f.CodeInfo.Size
		if sum, err := hex.DecodeString(f.CodeInfo.SHA256); err == nil {
			c.CodeSha256 = base64.StdEncoding.EncodeToString(sum)
		}
	}
	// The plain variables only: a variable that references a secret
	// (f.SecretEnv) is not shown at all, and its value is never known
	// here.
	if len(f.Env) > 0 {
		c.Environment = &environment{Variables: f.Env}
	}
	for _, l := range f.Layers {
		c.Layers = append(c.Layers, layerRef{Arn: h.arns.layer(l)})
	}
	if b := f.BuildStatus; b != nil {
		switch b.State {
		case fn.BuildPending, fn.BuildBuilding:
			c.State, c.LastUpdateStatus = "Pending", "InProgress"
		case fn.BuildFailed:
			c.LastUpdateStatus, c.LastUpdateStatusReason = "Failed", "the build of its dependencies failed: "+b.Error
			if f.CodeInfo != nil && b.CodeSHA256 == f.CodeInfo.SHA256 { // no code that built serves
				c.State, c.StateReason, c.StateReasonCode = "Failed", c.LastUpdateStatusReason, "InvalidCode"
			}
		}
	}
	return c
}

// architecture is the host's, in Lambda's words.
func architecture() string {
	if goruntime.GOARCH == "arm64" {
		return "arm64"
	}
	return "x86_64"
}

// epochSeconds is a time as Lambda's REST JSON timestamps are written.
func epochSeconds(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }
