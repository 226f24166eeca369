// Package apply writes the objects an operator owns with server-side apply,
// under one field manager, and skips the write entirely when the live object
// already carries what would be applied.
//
// A server-side apply of unchanged content does not change an object, but it
// is still a write request the API server has to authenticate, decode, merge
// and answer. Operators that run thousands of objects must not send one per
// object per resync, so Apply decides locally, from the cached live object,
// whether a write is needed:
//
//   - the live object carries the hash of the last desired state it was
//     applied with (annotation HashAnnotation). A different hash means the
//     desired state changed, including fields that were removed from it,
//     which only an apply can take away again;
//   - every field of the desired state has the same value in the live object
//     (a subset comparison, so fields defaulted by the API server or owned by
//     other managers do not count). A difference is drift, for example a
//     replica count edited by hand, and is repaired by applying again with
//     forced ownership.
//
// The comparison reads only the object's content, not managedFields, so it
// keeps working when a cache strips managedFields to save memory.
package apply
