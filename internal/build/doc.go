// Package build owns what a function's code goes through before a node can
// run it. This part takes archives in and writes them out:
//
//   - Unpack extracts an uploaded zip, tar.gz or tar into an empty
//     directory, streamed, within Limits, refusing any entry that could
//     write outside it (zip-slip, symlinks, hard links, devices) and any
//     archive that would unpack to more than the limits allow (zip bombs),
//     as it goes rather than after the fact.
//   - Pack and PackFiles write the canonical zip of a tree: the same files
//     always give the same bytes, so the code can be stored and shared by
//     the sha256 of its zip.
//
// It imports nothing of ours but package fn, whose ErrInvalid its
// ArchiveError wraps and whose path rules it shares. It knows nothing of
// stores, nodes, HTTP or where the directories it is given live.
package build
