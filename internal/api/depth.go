package api

import (
	"fmt"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// MaxJSONDepth is how deeply a request body may nest arrays and objects,
// as common parsers allow. Deeper events could crash a worker's decoder
// (Python's stops at its recursion limit) and, with concurrency, every
// call sharing the worker.
const MaxJSONDepth = 512

// checkDepth refuses JSON in b that nests deeper than MaxJSONDepth. It
// counts brackets outside strings in one pass over the bytes, before any
// decoding; whether b is valid JSON is checked elsewhere.
func checkDepth(b []byte) error {
	depth, inString := 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++ // the escaped byte cannot end the string
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			if depth++; depth > MaxJSONDepth {
				return fn.Invalid("body", fmt.Sprintf("JSON nests arrays and objects deeper than the limit of %d levels", MaxJSONDepth))
			}
		case ']', '}':
			depth--
		}
	}
	return nil
}
