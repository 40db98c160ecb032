// Package config reads Nimbus's settings: documented defaults, then a .env
// file, then the environment, then flags, each overriding the one before.
// The environment is read through an injected lookup so tests never touch
// the process's own.
package config
