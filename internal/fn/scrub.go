package fn

import "regexp"

// hostPath matches an absolute path of two or more elements.
var hostPath = regexp.MustCompile(`/[^\s/:'"()\[\]{},;]+(/[^\s/:'"()\[\]{},;]+)+`)

// ScrubPaths shortens every absolute path in an error message of the
// server's own making to its last element ("…/python3"), so that what the
// API shows names no directory of the host: where the data directory,
// interpreters and instances live is the operator's business, not every
// caller's.
func ScrubPaths(msg string) string {
	return hostPath.ReplaceAllStringFunc(msg, func(p string) string {
		i := len(p) - 1
		for i > 0 && p[i] != '/' {
			i--
		}
		return "…" + p[i:]
	})
}
