// Package driver defines how the engine starts and talks to function
// instances, whatever isolates them: the Driver and Instance interfaces, the
// registry drivers join by name, and Conn, the framed runtime protocol over a
// pair of byte streams that every driver shares. A driver knows nothing of
// HTTP, the store or pools.
package driver
