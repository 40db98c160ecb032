// Package url serves function URLs: ANY /fn/{name} and /fn/{name}/{path...}
// invoke a function whose URL is enabled with an API Gateway HTTP API
// payload v2.0 event, as Lambda's function URLs do, and turn what it
// returns into the HTTP response by Lambda's rules.
//
// It is a front end: it decodes the request, resolves the function
// through the functions service, runs it through the engine (one
// execution, recorded with trigger "http") and encodes the answer. It owns
// the URL's auth decision (Keys), CORS and the request limits; it knows
// nothing of the management API, its key checks or its routes.
package url
