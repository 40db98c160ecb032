package fn

import (
	"fmt"
	"regexp"
)

// MaxSecretNameBytes and MaxSecretValueBytes bound a secret's name and
// value (a value is an environment variable's, and Lambda's whole
// environment is 4 KiB).
const (
	MaxSecretNameBytes  = 128
	MaxSecretValueBytes = 4 << 10
)

var secretNameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$`)

// ValidSecretName says why name cannot name a secret, or nil: letters,
// digits, '.', '_' and '-', starting and ending with a letter or digit, at
// most MaxSecretNameBytes.
func ValidSecretName(name string) error {
	if len(name) > MaxSecretNameBytes {
		return Invalid("name", fmt.Sprintf("a secret's name has at most %d bytes", MaxSecretNameBytes))
	}
	if !secretNameRE.MatchString(name) {
		return Invalid("name", fmt.Sprintf("%q is not a secret name: use letters, digits, '.', '_' and '-', starting and ending with a letter or digit", name))
	}
	return nil
}
