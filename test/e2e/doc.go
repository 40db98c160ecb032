// Package e2e drives a real `nimbus serve` process over HTTP, with the real
// python3 and node, as a user would.
package e2e
