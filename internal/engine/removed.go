package engine

import "sync"

// maxRemovedIDs is how many removed functions the engine remembers: far
// more than can be deleted while a call that read one of them is still on
// its way to Invoke, at some 40 bytes each.
const maxRemovedIDs = 16384

// removedIDs remembers the ids of the most recently removed functions, so
// that a call or an update that read its function before the delete cannot
// start a pool for it again. Safe for concurrent use.
type removedIDs struct {
	mu    sync.Mutex
	limit int
	ids   map[string]struct{}
	order []string // a ring of up to limit ids: next is the oldest once full
	next  int
}

func newRemovedIDs(limit int) *removedIDs {
	return &removedIDs{limit: max(limit, 1), ids: map[string]struct{}{}}
}

// add remembers id, forgetting the oldest id when full.
func (r *removedIDs) add(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.ids[id]; ok {
		return
	}
	if len(r.order) < r.limit {
		r.order = append(r.order, id)
	} else {
		delete(r.ids, r.order[r.next])
		r.order[r.next] = id
		r.next = (r.next + 1) % len(r.order)
	}
	r.ids[id] = struct{}{}
}

// has reports whether id was removed.
func (r *removedIDs) has(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.ids[id]
	return ok
}
