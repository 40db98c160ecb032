// Package functions owns the function lifecycle behind every front end:
// create, update (merge a change, validate, check the sources compile, bump
// the version only when something that runs changed), delete, get and list,
// and Resolve, the invoke path's lookup of a function by id or name.
//
// Whatever reaches the engine passes through here and is validated first:
// what a user sends (Create, Update) and what the store holds (Resolve,
// WarmUp), since an import or another writer of a shared database can store
// what no API call would let in. Resolve serves from a cache that
// re-reads each function in the background after a TTL, so that changes
// and deletions made by other servers sharing the database reach this one;
// ids and names are cached apart, and only id-shaped strings are looked
// up as ids.
//
// The service tells the engine of every change (Engine.Update,
// Engine.Remove). It knows nothing of HTTP: the API, and the front ends to
// come (a Lambda-compatible API, function URLs, a CLI deploy, schedules),
// decode a request, call the service, and encode its answer.
package functions
