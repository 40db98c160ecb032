// Package auth decides who may do what: API keys (records with scopes,
// function globs, expiry and a rate limit; only their hash and a sealed
// copy of their secret are stored), the secrets functions reference from
// their environment (sealed with AES-256-GCM under a key-encryption key),
// the audit log of every change, and the UI's sessions.
//
//   - keyring.go: the key-encryption key (NIMBUS_SECRETS_KEY or a key file
//     in the data dir), sealing, the pepper keys are hashed with, and
//     rotation.
//   - principal.go: who a request is (a key, the bootstrap key, or
//     anonymous on a server without keys), its scopes and function globs.
//   - keys.go: creating, listing, revoking and checking keys, with a cache
//     every server reloads each second (a revocation reaches every server
//     sharing the store within that second).
//   - secrets.go: secrets, revealed only to the engine as an instance
//     starts.
//   - audit.go: the audit log.
//   - session.go: the UI's session cookie.
//   - limit.go: per-key rate limits and failed-authentication limits per
//     client address.
package auth
