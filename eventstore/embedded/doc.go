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
// meta page) plus one write per dirty page, about ten pages for one event
// with its three index entries. Concurrent appends therefore share
// transactions through db.Batch (group commit), with a short batch delay
// (DefaultMaxBatchDelay); an append with no other in flight commits at
// once. Measured with BenchmarkAppend and BenchmarkRawFdatasync on the
// development machine (ext4 on a virtual disk, 2 cores, one ~500-byte
// event per append, each writer on its own stream; medians of three 2s
// runs):
//
//	raw write+fdatasync              ~3,700 writes/s
//	Append, 1 writer                 ~1,650 events/s  (0.45× raw: two syncs per commit)
//	Append, 64 concurrent writers    ~9,000 events/s  (5.5× one writer, 2.4× raw; ~26 events per commit)
//
// The figures fall by half or more while other processes load the disk
// and CPUs (raw 2,300-4,000, one writer ~1,000, 64 writers ~4,300); the
// ordering holds.
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
