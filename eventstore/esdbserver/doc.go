// Package esdbserver is an in-process EventStoreDB protocol server: the
// part of the EventStoreDB gRPC API that the official Go client
// (github.com/EventStore/EventStore-Client-Go/v4) uses for streams, served
// on top of an eventstore.Store (the embedded engine in practice).
//
// It exists so that the EventStoreDB adapter (package eventstore/esdb) can
// be tested through the official client on machines where no EventStoreDB
// server can run, and so that several local processes can share one store
// the way they would share EventStoreDB. It is for tests and local
// development, not for production. Package esdbtest starts one for a test.
//
// # What it serves
//
//   - ServerFeatures.GetSupportedMethods, reporting server version 24.10.0
//     (configurable) and the methods below.
//   - Gossip.Read, describing a single alive leader node at the address the
//     caller connected to, so esdb+discover:// and gossip-seed connection
//     strings work against it.
//   - Streams.Append with expected revisions any / no_stream /
//     stream_exists / exact; a wrong expected version is answered as an
//     AppendResp.WrongExpectedVersion message. Idempotent retries (same
//     event IDs right after the expected revision) return the original
//     result, as the backing store decides.
//   - Streams.Read: stream and $all reads, forwards and backwards, with a
//     count, from start / end / a revision / a position, structured or
//     string UUIDs; plain reads answer only Event and StreamNotFound
//     messages. Catch-up subscriptions to a stream and to $all (from start,
//     end or exclusively after a revision or position), with stream-name or
//     event-type filters (prefixes or a regular expression, Go RE2 syntax),
//     a Confirmation first, Checkpoint messages every
//     checkpointIntervalMultiplier × maxSearchWindow events considered and
//     at the end of catch-up, then CaughtUp, then live events. For tests
//     of clients, WithCheckpointFaults makes $all subscriptions send the
//     wrong checkpoints some real servers send (MaxUint64; the position
//     of the event about to be sent) and drop right after them.
//   - The maximum append size (WithMaxAppendSize, default 1 MiB as a
//     real server): a larger append is answered as a real server answers
//     it, InvalidArgument "Maximum Append Size of N Exceeded." with
//     trailers exception=maximum-append-size-exceeded and
//     maximum-append-size.
//   - Streams.Delete (soft delete: later reads answer StreamNotFound until
//     new events are appended, which continue the revisions) and
//     Streams.Tombstone (reads, appends and subscriptions then fail with
//     the stream-deleted error, trailers exception=stream-deleted and
//     stream-name). Both answer with a position.
//
// Recorded events carry the metadata the client requires: type,
// content-type and created (100-ns ticks since the Unix epoch). $all
// positions are the backing store's positions, used as both commit and
// prepare position. The content type of non-JSON events is kept in a small
// envelope around the custom metadata stored in the backing store.
//
// Deletion state is durable: Delete writes a $metadata event carrying
// "$tb" (truncate before) and Tombstone a $streamDeleted event to the
// stream's metadata stream "$$<stream>" in the backing store. Those
// system events appear in $all, as system events do on a real server, so
// $all readers must filter $-prefixed streams out.
//
// # What it does not model
//
//   - Authentication and ACLs: credentials are accepted and ignored;
//     $acl stream metadata has no effect.
//   - Stream metadata other than "$tb": $maxAge, $maxCount, $cacheControl
//     and custom properties are stored but not enforced; scavenging does
//     not exist, so deleted events stay in $all.
//   - Persistent subscriptions, projections (and the $by_category,
//     $by_event_type, $ce- and $et- streams they write), link events and
//     their resolution (resolve_links is ignored), users, operations,
//     monitoring and the HTTP API.
//   - System streams written by a real server ($stats-…, $scavenges,
//     $settings, epochs…): the only system events are the deletion
//     records above.
//   - Streams.BatchAppend (not advertised; client v4.2.0 never uses it),
//     explicit transactions.
//   - Clustering: one node, always leader; no replication, no not-leader
//     redirects, requires-leader is ignored.
//   - Slow consumers are never dropped (the stream is flow-controlled
//     instead) and FellBehind is never sent.
//   - Byte-offset positions, commit positions distinct from prepare
//     positions, and the exact messages and status codes of every error.
package esdbserver
