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
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"passerelle/eventstore"
)

// Hash is the hash of one event: its place, identity, type, data and
// metadata (which holds the predecessor's hash, forming the chain).
func Hash(stream string, revision uint64, id uuid.UUID, eventType string, data, metadata []byte) string {
	d := sum(stream, revision, id, eventType, data, metadata)
	return hex.EncodeToString(d[:])
}

// sum hashes, with SHA-256, the lines
//
//	stream \n revision \n id \n type \n hex(SHA-256(data)) \n metadata
//
// (revision in decimal, id in its canonical lowercase form): the format
// every stored prev_hash and seal was made with. It is built by hand in a
// buffer on the stack, since every command hashes the events it loads and
// appends: fmt took 1.75 times as long, with eight allocations (BenchmarkHash).
func sum(stream string, revision uint64, id uuid.UUID, eventType string, data, metadata []byte) digest {
	dataSum := sha256.Sum256(data)
	var buf [512]byte
	b := append(buf[:0], stream...)
	b = append(b, '\n')
	b = strconv.AppendUint(b, revision, 10)
	b = append(b, '\n')
	b = appendUUID(b, id)
	b = append(b, '\n')
	b = append(b, eventType...)
	b = append(b, '\n')
	b = hex.AppendEncode(b, dataSum[:])
	b = append(b, '\n')
	b = append(b, metadata...)
	return sha256.Sum256(b)
}

// appendUUID appends id as uuid.UUID.String spells it.
func appendUUID(b []byte, id uuid.UUID) []byte {
	b = hex.AppendEncode(b, id[0:4])
	b = append(b, '-')
	b = hex.AppendEncode(b, id[4:6])
	b = append(b, '-')
	b = hex.AppendEncode(b, id[6:8])
	b = append(b, '-')
	b = hex.AppendEncode(b, id[8:10])
	b = append(b, '-')
	return hex.AppendEncode(b, id[10:16])
}

// Of hashes a recorded event.
func Of(e eventstore.RecordedEvent) string {
	return Hash(e.Stream, e.Revision, e.ID, e.Type, e.Data, e.Metadata)
}

// sumOf is Of as bytes.
func sumOf(e eventstore.RecordedEvent) digest {
	return sum(e.Stream, e.Revision, e.ID, e.Type, e.Data, e.Metadata)
}

// digest is an event's hash as bytes; the zero digest stands for none (a
// stream's first event follows no predecessor).
type digest [sha256.Size]byte

// parseDigest reads a hash as Hash writes it: 64 lowercase hex digits, or
// "" for none. Any other spelling is not the hash, as when hashes were
// compared as strings.
func parseDigest(h string) (digest, bool) {
	var d digest
	if h == "" {
		return d, true
	}
	if len(h) != hex.EncodedLen(len(d)) || !isHex([]byte(h)) {
		return d, false
	}
	_, err := hex.Decode(d[:], []byte(h))
	return d, err == nil
}

// streamKey names a stream in a map of heads by the first 128 bits of the
// SHA-256 of its name: such a map holds no pointers, so the garbage
// collector need not scan it, and a national log has millions of streams.
type streamKey [16]byte

func keyOf(stream string) streamKey {
	s := sha256.Sum256([]byte(stream))
	return streamKey(s[:16])
}

// last is the last event read of a stream. Its type, named by a Break,
// is read again from the store then.
type last struct {
	revision uint64
	position eventstore.Position
	hash     digest
}

// typeAt reads the type of a stream's event for a Break ("" if it cannot).
func typeAt(ctx context.Context, store eventstore.Store, stream string, revision uint64) string {
	evs, err := store.ReadStream(ctx, stream, eventstore.Forwards, revision, 1)
	if err != nil || len(evs) == 0 {
		return ""
	}
	return evs[0].Type
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
	// picked out of an object holding the key once, as the encoder writes
	// it (in valid JSON these bytes can only be that key: a quote inside a
	// string is escaped); anything else is decoded. An object that is not
	// valid JSON around the key is read as the key says: the event's hash
	// covers every byte of it, so its successor's link or its seal names
	// the edit all the same.
	//
	// An object without the key's name, nor a backslash that could spell
	// it otherwise, holds none (a stream's first event): checking that it
	// is JSON is enough.
	if len(md) > 1 && md[0] == '{' && md[len(md)-1] == '}' {
		switch bytes.Count(md, prevHashKey) {
		case 1:
			v := md[bytes.Index(md, prevHashKey)+len(prevHashKey):]
			if len(v) > 64 && v[64] == '"' && isHex(v[:64]) {
				return string(v[:64]), true
			}
		case 0:
			if !bytes.Contains(md, prevHashName) && bytes.IndexByte(md, '\\') < 0 {
				return "", json.Valid(md)
			}
		}
	}
	var e envelope
	if json.Unmarshal(md, &e) != nil {
		return "", false
	}
	return e.PrevHash, true
}

var prevHashKey, prevHashName = []byte(`"prev_hash":"`), []byte(`"prev_hash"`)

func isHex(b []byte) bool {
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
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

// Report is the outcome of a full verification. Unsealed counts the
// events after the last seal: their links to their predecessors are
// checked, but the last event of a stream among them has no successor nor
// seal to check it against until the next seal.
type Report struct {
	Events   int    `json:"events"`
	Seals    int    `json:"seals"`
	Unsealed int    `json:"unsealed"`
	Break    *Break `json:"break,omitempty"`
}

// Verify walks the log from the start. Events of streams outside chained
// categories (written by other tools) are skipped.
func Verify(ctx context.Context, store eventstore.Store, chained func(stream string) bool) (Report, error) {
	v := verifier{heads: map[streamKey]last{}, typeAt: func(stream string, rev uint64) string { return typeAt(ctx, store, stream, rev) }}
	err := each(ctx, store, eventstore.Start, func(e eventstore.RecordedEvent) bool {
		if chained(e.Stream) {
			v.rep.Break = v.check(e)
		}
		return v.rep.Break == nil
	})
	v.rep.Unsealed = len(v.tail)
	return v.rep, err
}

// verifier is Verify's state: the last event of each stream, the hash of
// the last seal.
type verifier struct {
	rep      Report
	heads    map[streamKey]last
	typeAt   func(stream string, revision uint64) string
	prevSeal string
	tail     []eventstore.Position // of the events no seal covers yet
}

// check verifies an event's link to its predecessor and, for a seal, what
// it records.
func (v *verifier) check(e eventstore.RecordedEvent) *Break {
	v.rep.Events++
	k := keyOf(e.Stream)
	if b := v.link(k, e); b != nil {
		return b
	}
	h := sumOf(e)
	v.heads[k] = last{e.Revision, e.Position, h}
	if e.Stream != SealStream || e.Type != SealType {
		v.tail = append(v.tail, e.Position)
		return nil
	}
	v.rep.Seals++
	if b := v.seal(e); b != nil {
		return b
	}
	v.prevSeal = hex.EncodeToString(h[:])
	return nil
}

// link checks that an event follows its stream's last event.
func (v *verifier) link(k streamKey, e eventstore.RecordedEvent) *Break {
	prev, ok := prevHash(e.Metadata)
	got, valid := parseDigest(prev)
	before, seen := v.heads[k]
	switch {
	case !ok:
		return &Break{e.Stream, e.Revision, e.Position, e.Type, "its metadata is not readable"}
	case seen && (!valid || got != before.hash):
		// the predecessor changed after this event was written
		return &Break{e.Stream, before.revision, before.position, v.typeAt(e.Stream, before.revision), "its hash no longer matches the one recorded by its successor"}
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
		cur, ok := v.heads[keyOf(stream)]
		if !ok || cur.revision < sh.Revision {
			return &Break{stream, sh.Revision, 0, "", "an event recorded by a seal is missing"}
		}
		if h, valid := parseDigest(sh.Hash); cur.revision == sh.Revision && (!valid || h != cur.hash) {
			return &Break{stream, cur.revision, cur.position, v.typeAt(stream, cur.revision), "its hash no longer matches the one recorded by a seal"}
		}
	}
	if upTo, err := eventstore.ParsePosition(s.UpTo); err == nil {
		// written while the seal was made: still to be sealed
		v.tail = slices.DeleteFunc(v.tail, func(p eventstore.Position) bool { return p <= upTo })
	}
	return nil
}

// Links checks one whole stream (evs from its first event, in order): each
// event's link to its predecessor, and its last event against the seal
// that recorded it, if any. It returns why each event found changed since
// it was written is broken, by revision. Unlike Verify it reads one stream
// and a few seals, not the whole log.
func Links(ctx context.Context, store eventstore.Store, evs []eventstore.RecordedEvent) (map[uint64]string, error) {
	broken := map[uint64]string{}
	for i, e := range evs {
		prev, ok := prevHash(e.Metadata)
		switch {
		case !ok:
			broken[e.Revision] = "its metadata is not readable"
		case i == 0 && (e.Revision != 0 || prev != ""):
			broken[e.Revision] = "the stream's earlier events are missing"
		case i > 0 && prev != Of(evs[i-1]):
			broken[evs[i-1].Revision] = "its hash no longer matches the one recorded by its successor"
		}
	}
	if len(evs) == 0 {
		return broken, nil
	}
	head := evs[len(evs)-1]
	s, found, err := sealCovering(ctx, store, head.Position)
	if err != nil || !found {
		return broken, err
	}
	if h, ok := s.Heads[head.Stream]; ok && h.Revision == head.Revision && h.Hash != Of(head) {
		broken[head.Revision] = "its hash no longer matches the one recorded by a seal"
	}
	return broken, nil
}

// sealCovering finds the first seal whose range reaches pos (seals cover
// the log in order: a binary search over the seal stream's revisions).
func sealCovering(ctx context.Context, store eventstore.Store, pos eventstore.Position) (Seal, bool, error) {
	at := func(rev uint64) (Seal, eventstore.Position, error) {
		evs, err := store.ReadStream(ctx, SealStream, eventstore.Forwards, rev, 1)
		if err != nil || len(evs) == 0 {
			return Seal{}, 0, err
		}
		var s Seal
		if err := json.Unmarshal(evs[0].Data, &s); err != nil {
			return Seal{}, 0, fmt.Errorf("seal %d: %w", rev, err)
		}
		upTo, err := eventstore.ParsePosition(s.UpTo)
		return s, upTo, err
	}
	last, err := store.ReadStream(ctx, SealStream, eventstore.Backwards, eventstore.End, 1)
	if errors.Is(err, eventstore.ErrStreamNotFound) || (err == nil && len(last) == 0) {
		return Seal{}, false, nil
	}
	if err != nil {
		return Seal{}, false, err
	}
	lo, hi := uint64(0), last[0].Revision+1 // the answer is in [lo, hi); hi: none
	for lo < hi {
		mid := lo + (hi-lo)/2
		_, upTo, err := at(mid)
		if err != nil {
			return Seal{}, false, err
		}
		if upTo >= pos {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	if lo > last[0].Revision {
		return Seal{}, false, nil
	}
	s, _, err := at(lo)
	return s, err == nil, err
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
	// MaxHeads bounds the streams one seal names (default SealHeads).
	MaxHeads int

	// the last event walked of each stream, kept from one seal to the
	// next while the next walk starts where this sealer's last seal
	// ended: the links of the next events are checked against them
	// rather than read from the store
	mu      sync.Mutex
	heads   *heads
	headsAt eventstore.Position // where the last seal appended here ended
	// the last seal appended here (it ended at headsAt): while it is the
	// seal stream's last event, the next seal starts where it ended,
	// without decoding it again (a seal of SealHeads streams is about 530
	// KB of JSON)
	mineID       uuid.UUID
	mineRevision uint64
	// the log after the last walk's end, read ahead by it: within one
	// SealAll, a seal starts where the one before ended
	ahead *reader
}

// SealHeads is the most streams a seal names: a seal stays an ordinary
// append (about 130 bytes a head, well under the 1 MiB an append may
// hold), and a log with more changed streams gets several seals in a row.
const SealHeads = 4096

// NewSealer builds a sealer over store; chained says which streams are
// chained, and is called from several goroutines at once.
func NewSealer(store eventstore.Store, chained func(string) bool, now func() time.Time) *Sealer {
	if now == nil {
		now = time.Now
	}
	return &Sealer{store: store, chained: chained, now: now}
}

// SealOnce appends one seal if anything was written since the previous
// one, covering at most MaxHeads streams; it reports whether it sealed.
func (s *Sealer) SealOnce(ctx context.Context) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.dropAhead()
	return s.seal(ctx)
}

// seal is SealOnce under s.mu.
func (s *Sealer) seal(ctx context.Context) (bool, error) {
	from, prevHash, expected, err := s.lastSeal(ctx)
	if err != nil {
		return false, err
	}
	if s.heads == nil || from != s.headsAt {
		// another sealer sealed meanwhile: the heads may be out of date,
		// the links are read again from the store
		s.heads = &heads{}
	}
	heads := s.heads
	// until the walk ends in a seal (or finds nothing to seal), the heads
	// may name events no seal covers: they are not kept
	s.heads = nil
	seal := Seal{Heads: map[string]Head{}, Previous: prevHash}
	upTo, err := s.walk(ctx, heads, from, seal.Heads)
	if err != nil {
		return false, err
	}
	if len(seal.Heads) == 0 {
		s.heads = heads
		return false, nil
	}
	seal.UpTo = upTo.String()
	data, _ := json.Marshal(seal) // plain struct: cannot fail
	md := eventstore.Metadata{
		CommandID: "seal/" + seal.UpTo, Actor: eventstore.Actor{Role: "system", Subject: "sealer"},
		OccurredAt: s.now().UTC(), PrevHash: prevHash,
	}.Encode()
	id := eventstore.EventID("seal/"+seal.UpTo, 0)
	res, err := s.store.Append(ctx, SealStream, expected, eventstore.EventData{ID: id, Type: SealType, Data: data, Metadata: md})
	if errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		return false, nil // another instance sealed first
	}
	if err == nil {
		s.heads, s.headsAt = heads, upTo
		s.mineID, s.mineRevision = id, res.LastRevision
	}
	return err == nil, err
}

// walk reads the log after from, checking each chained event's link to
// its predecessor, into heads (the last event of each stream) and named
// (what the seal will name), until named holds MaxHeads streams; it
// returns the position of the last event named.
func (s *Sealer) walk(ctx context.Context, heads *heads, from eventstore.Position, named map[string]Head) (eventstore.Position, error) {
	upTo := from
	limit := s.MaxHeads
	if limit <= 0 {
		limit = SealHeads
	}
	r := s.ahead
	if r == nil || r.ended || r.after != from {
		r.close()
		r = s.read(ctx, from)
	}
	// the pages read ahead serve the next seal when it starts where this
	// one ends: the reader is kept unless the walk fails
	s.ahead = nil
	for {
		e, h, err := r.next()
		if err != nil {
			r.close()
			return upTo, err
		}
		if e == nil {
			break
		}
		if !h.chained {
			r.i++
			continue
		}
		if _, ok := named[e.Stream]; !ok && len(named) >= limit {
			break // the next seal starts here
		}
		// a seal vouches for what it covers: each event's link to its
		// predecessor is checked first, so an edit made while the service
		// was down is reported, never sealed
		broken, err := s.link(ctx, heads.get(h.key), *e, h)
		if err != nil || broken != nil {
			r.close()
			if broken != nil {
				err = fmt.Errorf("the log is not intact, it is not sealed: %w", broken)
			}
			return upTo, err
		}
		heads.put(h.key, last{e.Revision, e.Position, h.sum})
		named[e.Stream] = Head{Revision: e.Revision, Hash: h.hex}
		upTo = e.Position
		r.i++
	}
	if err := ctx.Err(); err != nil {
		r.close()
		return upTo, err
	}
	r.after, s.ahead = upTo, r
	return upTo, nil
}

// reader is the log after a position, read and hashed ahead of the walk.
type reader struct {
	pages <-chan *page
	stop  func()
	cur   *page // the page being walked
	i     int   // its next event to check
	// where the walk that left it ended: the events between there and
	// cur.events[i] are none a seal names
	after eventstore.Position
	// it read the log to its end: what was appended since is read again
	// from the store
	ended bool
}

// next returns the next event to check and what the walk needs of it;
// nil at the end of the log as it was read.
func (r *reader) next() (*eventstore.RecordedEvent, *hashed, error) {
	for r.cur == nil || r.i == len(r.cur.events) {
		p, ok := <-r.pages
		if !ok {
			r.ended = true
			return nil, nil, nil
		}
		<-p.hashed
		if p.err != nil {
			return nil, nil, p.err
		}
		r.cur, r.i = p, 0
	}
	return &r.cur.events[r.i], &r.cur.hashes[r.i], nil
}

// close stops the reading and waits for it; a nil reader is closed.
func (r *reader) close() {
	if r != nil {
		r.stop()
	}
}

// page is a page of the log and what the walk needs of each event, once
// hashed is closed.
type page struct {
	events []eventstore.RecordedEvent
	hashes []hashed
	err    error
	hashed chan struct{}
}

// hashed is what the walk needs of an event: its stream's key, its hash,
// and the hash its metadata names for its predecessor.
type hashed struct {
	chained  bool // a chained event, not a seal
	key      streamKey
	sum      digest
	hex      string // sum as Hash spells it
	prev     digest
	readable bool // the metadata is readable
	valid    bool // and names its predecessor's hash as Hash spells it
}

// pageSize is how many events the walk reads at a time, and pagesAhead
// how many pages it reads and hashes ahead of the one it checks.
const (
	pageSize   = 1000
	pagesAhead = 2
)

// read reads the log after from a page at a time, and hashes each page
// while the next is read and the walk checks the one before: only the
// walk's links and maps must be sequential. A seed's sealer walks every
// event beside the commands, and on one goroutine it fell behind them.
func (s *Sealer) read(ctx context.Context, from eventstore.Position) *reader {
	ctx, cancel := context.WithCancel(ctx)
	out := make(chan *page, pagesAhead)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(out)
		for {
			evs, err := s.store.ReadAll(ctx, from, pageSize)
			if err == nil && len(evs) == 0 {
				return
			}
			p := &page{events: evs, err: err, hashed: make(chan struct{})}
			if err == nil {
				from = evs[len(evs)-1].Position
				p.hashes = make([]hashed, len(evs))
				wg.Go(func() { s.hashAll(p) })
			} else {
				close(p.hashed)
			}
			select {
			case out <- p:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	})
	return &reader{pages: out, stop: func() { cancel(); wg.Wait() }}
}

// hashAll hashes a page's events, a part per processor.
func (s *Sealer) hashAll(p *page) {
	defer close(p.hashed)
	evs := p.events
	parts := min(runtime.GOMAXPROCS(0), 1+len(evs)/64)
	var wg sync.WaitGroup
	for part := range parts {
		lo, hi := part*len(evs)/parts, (part+1)*len(evs)/parts
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				p.hashes[i] = s.hash(evs[i])
			}
		})
	}
	wg.Wait()
}

func (s *Sealer) hash(e eventstore.RecordedEvent) hashed {
	if e.Stream == SealStream || !s.chained(e.Stream) {
		return hashed{}
	}
	h := hashed{chained: true, key: keyOf(e.Stream), sum: sumOf(e)}
	h.hex = hex.EncodeToString(h.sum[:])
	var got string
	if got, h.readable = prevHash(e.Metadata); h.readable {
		h.prev, h.valid = parseDigest(got)
	}
	return h
}

// lastSeal says where the next seal starts: after the position the last
// one covers, chained to its hash, appended after its revision.
func (s *Sealer) lastSeal(ctx context.Context) (from eventstore.Position, hash string, expected eventstore.ExpectedRevision, err error) {
	evs, err := s.store.ReadStream(ctx, SealStream, eventstore.Backwards, eventstore.End, 1)
	switch {
	case errors.Is(err, eventstore.ErrStreamNotFound):
		return eventstore.Start, "", eventstore.NoStream, nil
	case err != nil:
		return 0, "", eventstore.Any, err
	}
	last := evs[0]
	if last.ID == s.mineID && last.Revision == s.mineRevision && s.mineID != (uuid.UUID{}) {
		// its ID is derived from where it ends: whoever appended it, it
		// ends there
		return s.headsAt, Of(last), eventstore.Exact(last.Revision), nil
	}
	var prev Seal
	if err := json.Unmarshal(last.Data, &prev); err != nil {
		return 0, "", eventstore.Any, fmt.Errorf("last seal: %w", err)
	}
	if from, err = eventstore.ParsePosition(prev.UpTo); err != nil {
		return 0, "", eventstore.Any, err
	}
	return from, Of(last), eventstore.Exact(last.Revision), nil
}

// SealAll appends seals until everything written is sealed; it returns
// how many it appended.
func (s *Sealer) SealAll(ctx context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.dropAhead()
	n := 0
	for {
		sealed, err := s.seal(ctx)
		if err != nil || !sealed {
			return n, err
		}
		n++
	}
}

// dropAhead stops the reading ahead: the log read may have grown by the
// next seal.
func (s *Sealer) dropAhead() {
	s.ahead.close()
	s.ahead = nil
}

// heads is the last event walked of the streams walked lately, in two
// generations: when the newer holds maxKnownHeads/2 streams, it becomes
// the older and the older is forgotten. A stream forgotten has its last
// event read from the store when it is next walked. A national season
// writes millions of streams, most of them a few times close together:
// forgetting all the heads at once made the walk read the predecessor of
// nearly every event after.
type heads struct {
	cur, prev map[streamKey]last
}

func (h *heads) get(k streamKey) last {
	if l, ok := h.cur[k]; ok {
		return l
	}
	return h.prev[k]
}

func (h *heads) put(k streamKey, l last) {
	if _, ok := h.cur[k]; !ok && len(h.cur) >= maxKnownHeads/2 {
		h.prev, h.cur = h.cur, nil
	}
	if h.cur == nil {
		h.cur = make(map[streamKey]last)
	}
	h.cur[k] = l
}

// maxKnownHeads bounds the streams a sealer keeps the last event of (about
// 80 bytes each).
const maxKnownHeads = 1 << 20

// link checks that e (hashed as h) follows its stream's event before it:
// prev, the one read last (the zero last if none was), or else read from
// the store.
func (s *Sealer) link(ctx context.Context, prev last, e eventstore.RecordedEvent, h *hashed) (*Break, error) {
	if !h.readable {
		return &Break{e.Stream, e.Revision, e.Position, e.Type, "its metadata is not readable"}, nil
	}
	if prev == (last{}) && e.Revision > 0 {
		evs, err := s.store.ReadStream(ctx, e.Stream, eventstore.Forwards, e.Revision-1, 1)
		if err != nil || len(evs) == 0 {
			return &Break{e.Stream, e.Revision, e.Position, e.Type, "the stream's earlier events are missing"}, err
		}
		p := evs[0]
		prev = last{p.Revision, p.Position, sumOf(p)}
	}
	if !h.valid || h.prev != prev.hash {
		if prev.hash == (digest{}) {
			return &Break{e.Stream, e.Revision, e.Position, e.Type, "the stream's earlier events are missing"}, nil
		}
		return &Break{e.Stream, prev.revision, prev.position, typeAt(ctx, s.store, e.Stream, prev.revision), "its hash no longer matches the one recorded by its successor"}, nil
	}
	return nil, nil
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
			if _, err := s.SealAll(ctx); err != nil && ctx.Err() == nil && onErr != nil {
				onErr(err)
			}
		}
	}
}
