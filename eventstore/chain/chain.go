// Package chain makes the event log tamper-evident.
//
// Every event written by Passerelle carries in its metadata the hash of its
// predecessor in the same stream (prev_hash), so changing any event breaks
// the link to its successor. The last event of a stream has no successor:
// seal events, appended periodically to the "seal-log" stream, record the
// hash of the head of every stream changed since the previous seal, and the
// hash of the previous seal. Verify walks the whole log and reports the
// first event whose hash no longer matches what a later record says.
package chain

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"passerelle/eventstore"
)

// Hash is the hash of one event: its place, identity, type, data and
// metadata (which holds the predecessor's hash, forming the chain).
func Hash(stream string, revision uint64, id uuid.UUID, eventType string, data, metadata []byte) string {
	h := sha256.New()
	dataSum := sha256.Sum256(data)
	fmt.Fprintf(h, "%s\n%d\n%s\n%s\n%x\n", stream, revision, id, eventType, dataSum)
	h.Write(metadata)
	return hex.EncodeToString(h.Sum(nil))
}

// Of hashes a recorded event.
func Of(e eventstore.RecordedEvent) string {
	return Hash(e.Stream, e.Revision, e.ID, e.Type, e.Data, e.Metadata)
}

// SealStream holds the seals.
const SealStream = "seal-log"

// SealType is the event type of a seal.
const SealType = "LogSealed"

// Seal is the data of a seal event.
type Seal struct {
	UpTo     string          `json:"up_to"`     // last position covered
	Heads    map[string]Head `json:"heads"`     // streams changed since the previous seal
	Previous string          `json:"prev_seal"` // hash of the previous seal event
}

// Head is the last event of a stream at sealing time.
type Head struct {
	Revision uint64 `json:"revision"`
	Hash     string `json:"hash"`
}

type envelope struct {
	PrevHash string `json:"prev_hash"`
}

// prevHash reads the predecessor's hash from an event's metadata.
func prevHash(md []byte) (string, bool) {
	var e envelope
	if json.Unmarshal(md, &e) != nil {
		return "", false
	}
	return e.PrevHash, true
}

// Break is the first broken link found.
type Break struct {
	Stream   string              `json:"stream"`
	Revision uint64              `json:"revision"`
	Position eventstore.Position `json:"position"`
	Type     string              `json:"type"`
	Reason   string              `json:"reason"`
}

func (b *Break) Error() string {
	return fmt.Sprintf("event %s@%d (position %d, %s): %s", b.Stream, b.Revision, b.Position, b.Type, b.Reason)
}

// Report is the outcome of a full verification.
type Report struct {
	Events int    `json:"events"`
	Seals  int    `json:"seals"`
	Break  *Break `json:"break,omitempty"`
}

type last struct {
	revision uint64
	position eventstore.Position
	typ      string
	hash     string
}

// Verify walks the log from the start. Events of streams outside chained
// categories (written by other tools) are skipped.
func Verify(ctx context.Context, store eventstore.Store, chained func(stream string) bool) (Report, error) {
	v := verifier{heads: map[string]last{}}
	err := each(ctx, store, eventstore.Start, func(e eventstore.RecordedEvent) bool {
		if chained(e.Stream) {
			v.rep.Break = v.check(e)
		}
		return v.rep.Break == nil
	})
	return v.rep, err
}

// verifier is Verify's state: the last event of each stream, the hash of
// the last seal.
type verifier struct {
	rep      Report
	heads    map[string]last
	prevSeal string
}

// check verifies an event's link to its predecessor and, for a seal, what
// it records.
func (v *verifier) check(e eventstore.RecordedEvent) *Break {
	v.rep.Events++
	if b := v.link(e); b != nil {
		return b
	}
	h := Of(e)
	v.heads[e.Stream] = last{e.Revision, e.Position, e.Type, h}
	if e.Stream != SealStream || e.Type != SealType {
		return nil
	}
	v.rep.Seals++
	if b := v.seal(e); b != nil {
		return b
	}
	v.prevSeal = h
	return nil
}

// link checks that an event follows its stream's last event.
func (v *verifier) link(e eventstore.RecordedEvent) *Break {
	prev, ok := prevHash(e.Metadata)
	before, seen := v.heads[e.Stream]
	switch {
	case !ok:
		return &Break{e.Stream, e.Revision, e.Position, e.Type, "its metadata is not readable"}
	case seen && prev != before.hash:
		// the predecessor changed after this event was written
		return &Break{e.Stream, before.revision, before.position, before.typ, "its hash no longer matches the one recorded by its successor"}
	case !seen && (e.Revision != 0 || prev != ""):
		return &Break{e.Stream, e.Revision, e.Position, e.Type, "the stream's earlier events are missing"}
	case seen && e.Revision != before.revision+1:
		return &Break{e.Stream, e.Revision, e.Position, e.Type, "revisions are not dense"}
	}
	return nil
}

// seal checks a seal: it follows the previous one, and the heads it
// records are the events read so far.
func (v *verifier) seal(e eventstore.RecordedEvent) *Break {
	var s Seal
	if err := json.Unmarshal(e.Data, &s); err != nil {
		return &Break{e.Stream, e.Revision, e.Position, e.Type, "the seal is not readable"}
	}
	if s.Previous != v.prevSeal {
		return &Break{e.Stream, e.Revision, e.Position, e.Type, "the seal does not follow the previous seal"}
	}
	for stream, sh := range s.Heads {
		cur, ok := v.heads[stream]
		if !ok || cur.revision < sh.Revision {
			return &Break{stream, sh.Revision, 0, "", "an event recorded by a seal is missing"}
		}
		if cur.revision == sh.Revision && cur.hash != sh.Hash {
			return &Break{stream, cur.revision, cur.position, cur.typ, "its hash no longer matches the one recorded by a seal"}
		}
	}
	return nil
}

// each calls fn on every event after from, in log order, until fn returns
// false.
func each(ctx context.Context, store eventstore.Store, from eventstore.Position, fn func(eventstore.RecordedEvent) bool) error {
	for {
		page, err := store.ReadAll(ctx, from, 1000)
		if err != nil || len(page) == 0 {
			return err
		}
		for _, e := range page {
			if !fn(e) {
				return nil
			}
		}
		from = page[len(page)-1].Position
	}
}

// Sealer appends seals covering everything written since the last one.
type Sealer struct {
	store   eventstore.Store
	chained func(string) bool
	now     func() time.Time
}

// NewSealer builds a sealer over store.
func NewSealer(store eventstore.Store, chained func(string) bool, now func() time.Time) *Sealer {
	if now == nil {
		now = time.Now
	}
	return &Sealer{store: store, chained: chained, now: now}
}

// SealOnce appends one seal if anything was written since the previous
// one; it reports whether it sealed.
func (s *Sealer) SealOnce(ctx context.Context) (bool, error) {
	var prev Seal
	var prevHash string
	from := eventstore.Start
	expected := eventstore.NoStream
	evs, err := s.store.ReadStream(ctx, SealStream, eventstore.Backwards, eventstore.End, 1)
	switch {
	case errors.Is(err, eventstore.ErrStreamNotFound):
	case err != nil:
		return false, err
	default:
		last := evs[0]
		if err := json.Unmarshal(last.Data, &prev); err != nil {
			return false, fmt.Errorf("last seal: %w", err)
		}
		p, err := eventstore.ParsePosition(prev.UpTo)
		if err != nil {
			return false, err
		}
		from, prevHash, expected = p, Of(last), eventstore.Exact(last.Revision)
	}
	seal := Seal{Heads: map[string]Head{}, Previous: prevHash}
	upTo := from
	err = each(ctx, s.store, from, func(e eventstore.RecordedEvent) bool {
		if e.Stream != SealStream && s.chained(e.Stream) {
			seal.Heads[e.Stream] = Head{Revision: e.Revision, Hash: Of(e)}
			upTo = e.Position
		}
		return true
	})
	if err != nil {
		return false, err
	}
	if len(seal.Heads) == 0 {
		return false, nil
	}
	seal.UpTo = upTo.String()
	data, _ := json.Marshal(seal) // plain struct: cannot fail
	md := eventstore.Metadata{
		CommandID: "seal/" + seal.UpTo, Actor: eventstore.Actor{Role: "system", Subject: "sealer"},
		OccurredAt: s.now().UTC(), PrevHash: prevHash,
	}.Encode()
	_, err = s.store.Append(ctx, SealStream, expected, eventstore.EventData{
		ID: eventstore.EventID("seal/"+seal.UpTo, 0), Type: SealType, Data: data, Metadata: md,
	})
	if errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		return false, nil // another instance sealed first
	}
	return err == nil, err
}

// Run seals every interval until ctx ends.
func (s *Sealer) Run(ctx context.Context, every time.Duration, onErr func(error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.SealOnce(ctx); err != nil && ctx.Err() == nil && onErr != nil {
				onErr(err)
			}
		}
	}
}
