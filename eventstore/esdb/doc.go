// Package esdb implements eventstore.Store on EventStoreDB (KurrentDB)
// through the official Go client, github.com/EventStore/EventStore-Client-Go/v4
// (pinned at v4.2.0).
//
// Open takes a client connection string: esdb://host:2113?tls=false for a
// single insecure node, esdb://user:pass@host1:2113,host2:2113,host3:2113
// for gossip seeds, esdb+discover://cluster.example:2113 for DNS
// discovery, with the client's settings (tlsCAFile, tlsVerifyCert,
// nodePreference, keepAliveInterval, defaultDeadline, …).
//
// # Mapping
//
//   - Streams are EventStoreDB streams; expected revisions map one to one
//     (Any, NoStream, StreamExists, Exact). A wrong expected version
//     becomes *eventstore.WrongExpectedVersionError with the actual
//     revision the server reported; deleted (tombstoned) streams give
//     eventstore.ErrStreamDeleted and missing or soft-deleted ones
//     eventstore.ErrStreamNotFound. Access denied gives
//     eventstore.ErrAccessDenied and a follower's not-leader answer
//     eventstore.ErrNotLeader, after the adapter tried again a bounded
//     number of times with a pause (the client reconnects to the leader
//     the answer names; a retried append is deduplicated by its IDs).
//   - Appends larger than the maximum append size (WithMaxAppendSize,
//     default 1 MiB as the server's default; eventstore.AppendSize counts
//     as the server does) are refused with eventstore.ErrAppendTooLarge
//     before they are sent; the server's own refusal maps to the same
//     error, and its other InvalidArgument answers to an append to
//     eventstore.ErrInvalidAppend.
//   - Event IDs are passed through, so a retried command carrying the same
//     IDs is deduplicated by the server (reliably when appended with the
//     exact revision it loaded). An ID already stored in another stream is
//     written by the server as a new event (the embedded store refuses
//     it; see eventstore.Store.Append). Data is sent with content type JSON; the
//     Passerelle metadata envelope is the event's custom metadata.
//     RecordedEvent.Created is the server's "created" time (100 ns
//     precision).
//   - eventstore.Position is the $all commit position. Positions passed
//     back (ReadAll, SubscribeAll) are assumed to have equal commit and
//     prepare positions, as on every EventStoreDB since 20.x.
//   - $all also holds system events. ReadAll, Head and SubscribeAll never
//     return events of $-prefixed streams, nor events whose type starts
//     with '$' (such as the $streamDeleted record of a tombstone).
//
// # Subscriptions
//
// SubscribeAll is a catch-up subscription to $all, exclusive of the given
// position, with a server-side filter: stream prefixes "<category>-" when
// Filter.Categories is set, else event-type prefixes when
// Filter.EventTypes is set, else a stream regex excluding $-prefixed
// streams. The exact filter (eventstore.Filter.Match) and the system
// filter are applied again to every event received. When the
// subscription drops (server restart, network failure, leader change) it
// resubscribes after a backoff from the last event received, skipping any
// event at or before it, so the consumer sees every event once, in order.
//
// Checkpoint messages are not trusted to skip anything: servers have sent
// checkpoints of MaxUint64 (before KurrentDB PR #4892) and checkpoints
// equal to the position of the event they send next (KurrentDB issue
// #4970). Duplicates are recognized by the position of the last event
// received only. A checkpoint is used as the start of a resubscription
// only when the server has sent a later checkpoint after it with no event
// in between, it is a real position (at most MaxInt64) and it lies within
// the head of $all read at resubscription; otherwise the resubscription
// starts after the last event received.
// Unauthenticated and access-denied failures end the subscription: Recv
// returns the error.
//
// # Robustness
//
// Client v4.2.0 has two traits the Store works around: its internal
// connection loop ignores contexts, and it shuts itself down for good when
// node discovery fails (the whole server down for about a second with the
// default settings). Every call therefore runs in its own goroutine, so
// the caller waits no longer than its context allows, and a client that
// has shut itself down is replaced by a new one on the next failure.
package esdb
