// Package web holds Nimbus's browser UI: static HTML, CSS and JavaScript
// embedded in the binary and served at /, with no build step and nothing
// loaded from a CDN. The UI talks only to the public HTTP API.
package web
