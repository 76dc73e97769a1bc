// Package embedded is Passerelle's default event store: an
// eventstore.Store kept in one bbolt file (FileName) inside a directory,
// with a write-ahead log (WALFileName) beside it while it is open.
//
// # Why bbolt
//
// The store needs durable, atomic appends of several events, a total order
// of all events, three indexes kept in step with the log, and consistent
// reads while writing. bbolt gives exactly that in pure Go and one file:
// serializable read-write transactions over B+trees, copy-on-write pages
// with two alternating meta pages, so a crash leaves a synced transaction
// intact, and readers that see a snapshot without blocking the writer. Its single writer is no loss
// here: a global log has one append point anyway, and positions are simply
// assigned inside the write transaction. An LSM engine (Pebble, Badger)
// would write faster but brings background compaction and more moving
// parts for a load of a few thousand events per second, and a new file
// format (the tamper tests, Check, passerelle verify, seeds and backups all
// read events.db); a hand-written segment file would leave torn writes and
// index rebuilds to us. The write-ahead log below takes from an LSM only
// its one sequential sync per group.
//
// # Durability: one sync per group
//
// A bbolt commit costs two fdatasyncs (the dirty pages, then the meta
// page) plus a write per dirty page, about three and a half pages per
// event with its three index entries (the ids index is keyed by random
// UUIDs and the others by stream, so each event dirties pages of its own
// there; but see below). bbolt cannot do with one: it
// writes the data pages and then the meta page, and a single sync after
// both lets the disk keep the new meta page without the pages it points
// to, a corrupt file after a power failure.
//
// So an append is made durable by a write-ahead log instead (WALFileName,
// beside the database; see wal.go): a committer goroutine takes every
// append waiting, decides and writes them in one bbolt transaction, writes
// the group's records to the log as one frame and fdatasyncs it, then lets
// bbolt commit without syncing, and answers them all. One sync of one
// sequential write per group is the floor: an acknowledged append must be
// on disk, and the group shares it. The log's file is filled with zeros
// ahead of its frames, so that the sync writes the frame alone and not
// the file's new length as well (wal.go, zeroFill). Readers see a group
// only once its frame is synced, so nothing a crash can take back is
// ever read.
//
// A bulk load that is started again from an empty store when it does not
// finish (a seed) may do without that sync (WithUnsyncedAppends): a frame
// written is in the system's cache, which a crash of the process keeps,
// and only a crash of the machine may take back the groups since the
// last checkpoint. Checkpoints and Close sync events.db as before. Its
// log gets no zeros ahead of its frames: a seed's Open wrote and synced
// 1.25 GiB of them (its checkpoint interval and a quarter), which took
// 1.8 s of a small seed's 2.3, and Open after a crash read them all
// back (8.7 s for a seed of Val-de-Marne killed after 3 s, 1.6 s since).
//
// The sync is not overlapped with the next group's transaction. Done so
// (bbolt committing each group at once, a syncer answering the groups
// once their frame is synced, readers held to the last synced position),
// the 64 writers of BenchmarkAppendVsRaw split into two groups of 34-39
// events in turn instead of one of 58-60, and appended 8.8 and 9.2 times
// the raw fdatasync loop against 9.2 and 9.2 without (two runs of each,
// alternated). Halving the groups doubled the transactions, each with
// its fixed cost, and that took back what the overlap saved: a sync of
// about 170 µs a group on the project's machines.
//
// A checkpoint (at Open, then every 16 MiB of log or 65,536 bbolt pages
// written, or every sixteenth of events.db once that is more, up to 256
// MiB of log: see checkpointInterval) syncs events.db, copies the meta page of a commit into a
// fresh log, and holds a read transaction open on that commit until the
// next checkpoint, so bbolt reuses none of its pages. Whatever a crash
// (even of the machine) leaves of the unsynced commits since, even a
// machine crash that kept a meta page and lost the pages it points to,
// Open writes the copied meta page back (the checkpoint is then exactly
// on disk) and replays the log's complete frames. Close checkpoints,
// syncs events.db and removes the log, so a store closed cleanly is
// events.db alone; after a crash the two files belong together until
// the store has been opened once where it crashed (a log beside another
// events.db is refused).
//
// The committer merges a checkpoint's index entries (below) between
// groups, a small transaction at a time, each one when no append waits
// or after a group; then it syncs events.db, pins the last commit and
// writes the new log. The groups committed during the merge have their
// index entries in memory only, so the new log carries their records
// over (some already in the pinned commit): Open indexes them again.
// Each of those groups' frames is written to the new log as it is
// committed (without a sync: the current log is the durable one), so
// the checkpoint only writes the new log's header and syncs it; it
// copies the records from bbolt only after a checkpoint that had to
// come before the end of its merge (see mayRemap).
// Until the new log is renamed into place the old one, over the old
// pinned checkpoint, is the way back. So a checkpoint that finds no file
// descriptor left to open its new log (the process's limit, reached by a
// flood of connections) waits a second and tries again, the appends going
// on through the old log; any other failure of a checkpoint stops the
// appends (see postponable). A checkpoint used to stop the
// appends while it merged and synced, 20–120 ms each time on a
// département seed; now only the sync does (a few ms at a server's
// load). In BenchmarkAppendOpenLoop (1,000 appends a second into
// 100,000 events) the p99 latency went from 65–141 ms to 13–15 ms and
// the longest from 207–290 ms to about 62 ms. Syncing on another
// goroutine as well took the longest to 36 ms, but at a seed's rate
// the sync of a large file took seconds, the log carried over all the
// records written meanwhile (over 100 MB), and a national seed stalled.
// Closing the log a checkpoint replaced frees its blocks (100 to 150 MB
// of log on a seed of four départements: 110 to 190 ms), so another
// goroutine does it.
//
// bbolt cannot grow its mapping while the checkpoint's read transaction
// is open, so it maps 64 GiB of address space (twice the file, if more)
// from the start, 1 GiB where that is refused, and a commit that might
// outgrow the mapping drops the pin first and checkpoints after.
//
// bbolt also writes its list of free pages at every commit, and sorts it
// first: the pages the pinned checkpoint holds back are all on it, so it
// grows with the file. The store keeps it in memory only while open
// (NoFreelistSync) and Close writes it once. A crash loses nothing by it:
// the Open that replays the log walks the pages the restored checkpoint
// reaches, and every other page is free.
//
// The pin holds back the pages freed since the checkpoint, and bbolt
// cannot tell the ones it added at the end of the file since from those
// the checkpoint reaches: in a file with no free page, every commit's
// rewritten pages are held until the next checkpoint, and bbolt walks
// them all at each commit. A checkpoint therefore also comes when they,
// and the pages written since the last one, pass an eighth of the pages
// between checkpoints (pendingShare): a lone append into a new store
// went from 0.29-0.34× the raw fdatasync loop to 0.58-0.63× (`passerelle
// bench --only appends --duration 5s`, three pairs of runs).
//
// # Index entries: merged at checkpoints
//
// A group's commit writes only the log's records: the ids, revs and
// streams entries of the events appended since the last checkpoint are
// kept in memory (index.go), and the checkpoint merges them into bbolt
// in key order, before it syncs the file. A page of an index is then
// written about once per checkpoint however many of the events since
// land on it, where each group used to write again every page its
// events touched. Seeding département 94 at scale 0.3 (78,334 events)
// wrote 0.43 bbolt pages per event instead of 3.63, and the seed spent
// 40% less CPU per event (median of three alternated runs, 165 µs
// against 292 µs; département 59 at scale 0.5, 236,601 events: 144 µs
// against 247 µs, and a file 12% larger, as each merge rewrites the
// index pages it touches while the checkpoint's stay pinned). Those
// figures are at a checkpoint every 16 MiB; at 4 MiB, merged in
// transactions of 128 entries between the groups, the seed costs within
// 3% of that CPU per event.
// The entries are durable as their events are, through the log: the
// merge's transactions are unsynced commits like a group's, under the
// pinned checkpoint, so a crash before the checkpoint completes replays
// the log over the previous checkpoint. Open's replay likewise writes
// the log's records and gathers their entries, and its checkpoint merges
// them all before Open returns. The file's format does not change: a
// store closed cleanly holds every entry in its buckets, as it always
// did, and an older build opens it as before. A log carrying records
// over has a new version (2), which an older build refuses rather than
// read those events unindexed: after a crash, the store is opened once by
// a build that knows it.
//
// The committer adds an event's entries as it writes the event, before
// the commit, so that the next append of the group sees them, and takes
// them back if the transaction rolls back; a reader ignores the entries
// past the last log position of its transaction. The entries come in two
// generations: the one being merged and the one appends add to. A reader
// holds them for reading from before it begins its transaction until it
// has looked them up, and a merge drops its generation only with them
// held for writing, after its last transaction: a transaction that began
// before that never looks for an entry the merge took away.
//
// Appends arriving during a commit wait for the next one, so the group
// grows with the load; the committer waits up to a millisecond for a
// group to grow back to the previous group's size (the writers it just
// answered are on their way back), and a lone append commits at once.
// Each append in a group is checked on its own: a refused one writes
// nothing and leaves its neighbours committed. A failure after a frame
// was logged leaves the log and bbolt apart, so the store then refuses
// appends until it is opened again.
//
// Measured with BenchmarkAppendVsRaw, which alternates half-second runs
// of Append and of the raw write+fdatasync loop on the same disk (one
// ~500-byte event per append, each writer on its own stream), on the
// development machine (virtual disk, 2 cores shared with other builds,
// load average about 10, raw 400-900 syncs/s), three runs of each build
// back to back; the ratios hold better than the rates, and still move by
// a third between runs:
//
//	             log, one sync    bbolt, two syncs per commit (before)
//	1 writer     0.55-0.77× raw   0.41-0.48×
//	8 writers    3.3-3.8×         1.4-1.6×    (about 7 appends per group, was 4)
//	64 writers   8.0-11.8×        5.3-6.9×    (about 48 per group, was 32)
//
// At 64 writers the committer, not the disk, is the limit on two shared
// cores: bbolt without any sync reaches only about twice these rates. With
// the machine busier (load average 15-19, raw 150-1,200 syncs/s within a
// run) six more pairs of runs kept the gain at 1 writer (median 0.59×
// against 0.31×) and 8 writers (2.5× against 1.2×), while the 64-writer
// ratios of both builds scattered from 2.4× to 12.5×.
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
// While the store is open, the streams, revs and ids entries of the
// events appended since the last checkpoint are in memory only (see
// above); at every checkpoint and after Close the buckets hold them all.
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
// The store remembers in memory the last revision of the streams written
// lately (two generations of up to 1,048,576 streams, about 53 MiB each
// when full): a forward read past the end of one of them, which is how a
// command checks a cached aggregate for news, is answered without a read
// transaction.
//
// Subscriptions read the log themselves, in short read transactions, and
// wait for the next commit when they reach its end; the context given to
// SubscribeAll bounds the subscription's life.
package embedded
