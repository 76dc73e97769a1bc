// Package embedded is Passerelle's default event store: an
// eventstore.Store kept in one bbolt file (FileName) inside a directory.
//
// # Why bbolt
//
// The store needs durable, atomic appends of several events, a total order
// of all events, three indexes kept in step with the log, and consistent
// reads while writing. bbolt gives exactly that in pure Go and one file:
// serializable read-write transactions over B+trees, copy-on-write pages
// with two alternating meta pages, so a crash at any point leaves the last
// committed transaction intact with no recovery step, and readers that see
// a snapshot without blocking the writer. Its single writer is no loss
// here: a global log has one append point anyway, and positions are simply
// assigned inside the write transaction. An LSM engine (Pebble, Badger)
// would write faster but brings background compaction and more moving
// parts for a load of a few thousand events per second; a hand-written
// segment file would leave torn writes and index rebuilds to us.
//
// The cost of a bbolt commit is two fdatasyncs (the dirty pages, then the
// meta page) plus one write per dirty page, about two pages per event with
// its three index entries (the ids index is keyed by random UUIDs, so each
// event dirties a page of its own there). One sync cannot replace the two:
// bbolt writes the data pages and then the meta page, and a single sync
// after both lets the disk keep the new meta page without the pages it
// points to, which after a power failure is a corrupt file (a process
// crash alone loses nothing either way). Two syncs per commit are the
// floor, so appends share commits: a committer goroutine takes every
// append waiting, writes them in one transaction and answers them all;
// appends arriving meanwhile form the next group. No timer: a lone append
// commits at once, and under load a group holds about half the writers
// (the other half are being answered or are waiting for the commit).
// Each append in a group is checked on its own: a refused one writes
// nothing and leaves its neighbours committed.
//
// Measured with BenchmarkAppendVsRaw, which alternates half-second runs of
// Append and of the raw write+fdatasync loop on the same disk (one
// ~500-byte event per append, each writer on its own stream), on the
// development machine (virtual disk, 2 cores) while other processes
// loaded it (load average 12-15, raw 300-1,200 syncs/s); the ratios hold
// better than the rates, and still move by half between runs:
//
//	             committer      bbolt Batch, 1 ms delay (before)
//	1 writer     0.33-0.60×     0.51× raw   (two syncs per commit)
//	8 writers    1.7-1.8×       0.92×       (about 4 events per commit)
//	64 writers   5.3-6.3×       3.9×        (about 31 events per commit of ~60 pages)
//
// # On-disk layout
//
// Four buckets, all integers 8-byte big-endian so keys sort numerically:
//
//	log      position → record                 the global log; positions come from the
//	                                           bucket's sequence, from 1, dense
//	streams  stream name → last revision        a stream exists iff it has an entry
//	revs     stream 0x00 revision → position    one entry per event
//	ids      event ID (16 bytes) → position     one entry per event; event IDs are unique
//
// A record is a version byte (1), the 16-byte event ID, then the stream
// name, revision, type, created time (unix nanoseconds), data and metadata,
// strings and byte slices prefixed by their uvarint length. Store.Check
// verifies that the indexes agree with the log.
//
// # Semantics beyond the port
//
// Event IDs are unique in the whole store. An append whose IDs are all
// stored, in order, in the same stream right after the expected revision
// (for Any and StreamExists: wherever the first one is) is a retry and
// returns the original result without writing. Any other reuse of a stored
// ID is a *eventstore.WrongExpectedVersionError when the expected revision
// does not hold, and eventstore.ErrInvalidAppend otherwise or when the ID
// belongs to another stream.
//
// Subscriptions read the log themselves, in short read transactions, and
// wait for the next commit when they reach its end; the context given to
// SubscribeAll bounds the subscription's life.
package embedded
