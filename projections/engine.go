package projections

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"passerelle/domain"
)

// A read model is a set of JSON documents, each the fold of the events
// about one thing (an offer, an application, a pupil…). A document also
// contributes entries to keys it shares with other documents: members of
// search indexes, of a school's sets, of sorted lists, geographic points,
// hash fields and counters. A projector only folds events into documents,
// in memory; the engine (project) loads the documents an event touches
// and lets the projector fold it; once a batch of events is folded, each
// document it changed is written once, with the difference between its
// entries before and after the batch (batch.finish). The live runner and
// the rebuild run the same engine and differ only in where documents are
// read from.

// Doc is a read-model document, stored as JSON under its key.
type Doc interface {
	// Entries appends to dst what the document contributes to shared
	// keys, and returns the result; it depends on the document's stored
	// fields only. A batch lists every document's entries into chunks
	// it keeps from one batch to the next (see batch.list): a slice of
	// its own for each listing was a tenth of the bytes allocated while
	// offers were posted, and 7 % of the processor time of a start over
	// a log of offers.
	Entries(dst []Entry) []Entry
}

// Docs are the documents an event folds into, by key relative to the
// generation; a nil value is an absent document.
type Docs map[string]Doc

// Ref names a document and its type.
type Ref struct {
	Key  string
	Type DocType // to decode the document into
	// Created: the event creates the document, which the log guarantees
	// absent before it (the first event of its stream), so it is not read
	Created bool
	// Names: once loaded, the document may name others the event
	// touches (a convention its pupil), so Touches is asked again. Most
	// events touch the documents their own ids name, and asking again
	// only built the same keys twice.
	Names bool
}

// docPtr is a document type *T.
type docPtr[T any] interface {
	*T
	Doc
}

// DocType makes empty documents of one type.
type DocType interface{ New() Doc }

// docOf is the DocType of *T. It holds nothing, so a Ref costs no
// allocation for it (a closure over a type parameter costs one, and every
// event names a few documents).
type docOf[T any, P docPtr[T]] struct{}

func (docOf[T, P]) New() Doc { return P(new(T)) }

// ref is the Ref of a document of type *T.
func ref[T any, P docPtr[T]](key string) Ref {
	return Ref{Key: key, Type: docOf[T, P]{}}
}

// created is the Ref of a document of type *T that the event creates.
func created[T any, P docPtr[T]](key string) Ref {
	r := ref[T, P](key)
	r.Created = true
	return r
}

// naming is the Ref of a document of type *T that names others the
// event touches.
func naming[T any, P docPtr[T]](key string) Ref {
	r := ref[T, P](key)
	r.Names = true
	return r
}

// doc returns the document at key, nil when absent.
func doc[T any, P docPtr[T]](docs Docs, key string) P {
	d, _ := docs[key].(P)
	return d
}

// create returns the document at key, created empty when absent.
func create[T any, P docPtr[T]](docs Docs, key string) P {
	d, ok := docs[key].(P)
	if !ok {
		d = new(T)
		docs[key] = d
	}
	return d
}

// Projector folds events into the documents of one read model.
type Projector interface {
	Name() string
	// Layout is the version of the read model's key layout and document
	// shapes. Bump it with any change to them: a generation written with
	// another layout is rebuilt on its own at the next start.
	Layout() int
	// Touches names the documents ev folds into. While it names one that
	// names others (Ref.Names), it is asked again with the documents
	// loaded so far, until it names no new one.
	Touches(ev Event, docs Docs) []Ref
	// Apply folds ev into docs: it changes them in place, adds the absent
	// ones it creates, or sets a key to nil to delete its document. It may
	// only change documents Touches named.
	Apply(ev Event, docs Docs)
	// Folds reports whether Touches may name a document for an event of
	// this type in a stream of this category (employer, school, pupil,
	// offer…). The events it does not fold are not decoded for it: a
	// pupil's copy of each application, a quarter of a season's log, is
	// folded by no projection.
	Folds(category, eventType string) bool
}

// foldedBy reports whether any of ps folds the event recorded in stream,
// of type t.
func foldedBy(stream, t string, ps ...Projector) bool {
	category, _, _ := strings.Cut(stream, "-")
	for _, p := range ps {
		if p.Folds(category, t) {
			return true
		}
	}
	return false
}

// PersonalReader is a Projector that reads sealed personal fields: it
// names the event types it needs opened. Events are opened for the
// projectors that read them and for no other: opening costs a key read
// and a decryption, and a read model that does not show personal data
// should not hold it. A projector that is not a PersonalReader sees every
// personal field sealed.
type PersonalReader interface {
	ReadsPersonal(eventType string) bool
}

// readsPersonal reports whether any of ps reads the personal fields of
// events of type t.
func readsPersonal(t string, ps ...Projector) bool {
	for _, p := range ps {
		if r, ok := p.(PersonalReader); ok && r.ReadsPersonal(t) {
			return true
		}
	}
	return false
}

// EntryKind is the kind of a shared key an entry is part of.
type EntryKind uint8

// The kinds of entries, with the commands that write and remove them.
const (
	SetMember    EntryKind = iota // SADD / SREM
	SortedMember                  // ZADD with Score / ZREM
	GeoPoint                      // GEOADD with Lon, Lat / ZREM
	HashField                     // HSET with Value / HDEL
	Counter                       // HINCRBY by the difference of N
)

// Entry is one contribution of a document to a shared key. A member,
// field or point has one contributor, listed once: only counters add up,
// across documents and within one.
type Entry struct {
	Kind     EntryKind
	Key      string // relative to the generation
	Member   string // the member, or the hash field
	Score    float64
	Lon, Lat float64
	Value    string
	N        int64
}

func member(key, m string) Entry { return Entry{Kind: SetMember, Key: key, Member: m} }
func scored(key, m string, score float64) Entry {
	return Entry{Kind: SortedMember, Key: key, Member: m, Score: score}
}
func point(key, m string, lon, lat float64) Entry {
	return Entry{Kind: GeoPoint, Key: key, Member: m, Lon: lon, Lat: lat}
}
func field(key, f, v string) Entry         { return Entry{Kind: HashField, Key: key, Member: f, Value: v} }
func counter(key, f string, n int64) Entry { return Entry{Kind: Counter, Key: key, Member: f, N: n} }

// docSource is where the engine reads documents, and tells their changes.
type docSource interface {
	// get returns each document, decoded, and its JSON as stored; nil
	// and "" when it is absent.
	get(refs []Ref) ([]Doc, []string, error)
	// put records a document an event created, replaced or deleted (nil)
	// and its JSON as stored, which changes only when a batch is finished.
	// The engine changes the documents get returned in place, with no put,
	// and renders them only when the batch is finished: until then get
	// must return them as it did, or as put. The slices get returns are
	// the caller's until its next call.
	put(key string, d Doc, json string)
}

// decode reads a document of r's type from its stored JSON.
func decode(r Ref, json string) (Doc, error) {
	if json == "" {
		return nil, nil
	}
	d := r.Type.New()
	if err := domain.Unmarshal([]byte(json), d); err != nil {
		return nil, fmt.Errorf("%s: %w", r.Key, err)
	}
	return d, nil
}

// maxTouchRounds bounds the documents naming other documents.
const maxTouchRounds = 4

// project folds ev into the documents of p it touches, read from src, and
// records them in w; finish writes the change of each document's entries
// over the batch, and the document, once however many events touched it.
func project(p Projector, ev Event, src docSource, w *batch) error {
	docs, loaded, err := load(p, ev, src, w)
	if err != nil {
		return err
	}
	defer func() { w.loaded = loaded }() // its room, for the next event
	for i := range loaded {
		if d := docs[loaded[i].key]; d != nil {
			loaded[i].before = w.before(loaded[i].key, d)
		}
	}
	p.Apply(ev, docs)
	if len(docs) != len(loaded) {
		return fmt.Errorf("%s changed documents it did not touch", p.Name())
	}
	for _, l := range loaded {
		d := docs[l.key]
		if d != l.doc { // created, replaced or deleted: src holds l.doc
			src.put(l.key, d, l.json)
		}
		if !counts(d) && !counts(l.doc) {
			w.doc(l.key, d, l.json, l.before, false)
			continue
		}
		after := w.list(d)
		w.diff(l.before, after)
		w.doc(l.key, d, l.json, after, true)
	}
	return nil
}

// counting is a document whose entries hold counters. Its entries are
// compared after each event that changes it, not once over the batch: a
// counter that one of its states moved is written (by 0 if moved back),
// as one event at a time would leave the field, whatever the batch holds.
type counting interface{ counts() }

func counts(d Doc) bool {
	_, ok := d.(counting)
	return ok
}

// loadedDoc is a document an event touches, as it was before: before is
// its entries, unless the batch touched it already (see batch.before).
type loadedDoc struct {
	key    string
	doc    Doc
	json   string
	before []Entry
}

// load reads the documents ev touches, in the order Touches names them,
// into w's scratch map and slice (projectors keep neither).
func load(p Projector, ev Event, src docSource, w *batch) (Docs, []loadedDoc, error) {
	if w.docs == nil {
		w.docs = Docs{}
	}
	docs := w.docs
	clear(docs)
	clear(w.loaded)
	loaded := w.loaded[:0]
	for round := 0; ; round++ {
		refs, again := w.refs[:0], false
		for _, r := range p.Touches(ev, docs) {
			if _, ok := docs[r.Key]; !ok && !slices.ContainsFunc(refs, func(x Ref) bool { return x.Key == r.Key }) {
				refs = append(refs, r)
				again = again || r.Names
			}
		}
		w.refs = refs
		if len(refs) == 0 {
			return docs, loaded, nil
		}
		if round == maxTouchRounds {
			return nil, nil, fmt.Errorf("%s: documents keep naming others (%s…)", p.Name(), refs[0].Key)
		}
		read := refs[:0] // those not created, in place
		for _, r := range refs {
			if r.Created {
				docs[r.Key] = nil
				loaded = append(loaded, loadedDoc{key: r.Key})
			} else {
				read = append(read, r)
			}
		}
		if len(read) > 0 {
			ds, bs, err := src.get(read)
			if err != nil {
				return nil, nil, err
			}
			for i, r := range read {
				docs[r.Key] = ds[i]
				loaded = append(loaded, loadedDoc{key: r.Key, doc: ds[i], json: bs[i]})
			}
		}
		if !again {
			return docs, loaded, nil
		}
	}
}

// batch is the writes of one or more events to a generation, reduced to
// their net effect: the last value of each document and entry, the sum of
// each counter's changes.
type batch struct {
	order []target       // each target once, in the order first written
	vals  []write        // vals[i] is the last write to order[i]
	at    map[target]int // a target's index in order
	// render's scratch, kept from one batch to the next: a live runner
	// renders a batch for every few events, and growing these afresh each
	// time was the most bytes a projection allocated
	next   []int // of each member write, the next of its command and key (-1: none)
	groups []memberGroup
	index  map[[2]string]int // a group by its command and key
	args   []any             // liveArgs's, kept likewise
	// the documents' entries, listed one after the other into chunks of
	// a fixed size (see list): entries, the one being filled, is
	// chunks[chunk]; the batch keeps them all from one batch to the next
	entries []Entry
	chunks  [][]Entry
	chunk   int
	// project's scratch, kept from one event to the next
	docs   Docs
	loaded []loadedDoc
	refs   []Ref
	// unshared: finish is adding the writes of documents that count
	// nothing, whose targets no other write of the batch shares (a
	// member, field or point has one contributor, and finish compares
	// each document once), so set appends them without looking them up.
	// A new offer adds about two dozen; on a log of offers, looking each
	// up and indexing it was a sixth of a rebuild's processor time.
	unshared bool
	// unsettled is how many documents finish will compare: each adds
	// the writes of its changed entries then (a new offer about two
	// dozen), which a rebuild counts ahead (see rebuild.flush).
	unsettled int
	// kept is how many entries the settled documents hold for their
	// next change, the counting documents' until the batch is written: an
	// offer's counters are about twenty, a span holds them all, and they
	// are no writes of its own
	kept int
}

// target is what a write is about: a document (kind docKind), an entry's
// member or a counter.
type target struct {
	kind        EntryKind
	key, member string
}

const docKind EntryKind = 255

type write struct {
	entry   Entry // a counter's N is the sum of its changes
	removed bool
	// a document's write (nil for an entry): a write stays small enough
	// for the map of a batch to hold it in place, where a larger one is
	// allocated on its own at every insert, about 30 for each new offer
	*docWrite
}

// docWrite is a document as the batch leaves it (nil: deleted), its JSON
// as stored before the batch, and as finish renders it ("": deleted).
// The JSON is a string, as Redis holds it: the in-process server and a
// rebuild's document cache then share one copy.
type docWrite struct {
	doc       Doc
	was, json string
	// entries: as stored before the batch, for finish to compare with the
	// document's after it; once settled (a counting document, or any
	// document after finish), as the last event that touched it left
	// them, already compared
	entries []Entry
	settled bool
	same    bool // finish found it unchanged: nothing to write
}

// newBatch makes a batch with room for size writes, mapped of them
// looked up by target: the writes finish adds for documents that count
// nothing are not (see unshared), most of a span of new offers.
func newBatch(size, mapped int) *batch {
	return &batch{order: make([]target, 0, size), vals: make([]write, 0, size), at: make(map[target]int, mapped)}
}

func (w *batch) set(t target, v write) {
	if !w.unshared || t.kind == Counter {
		if i, ok := w.at[t]; ok {
			w.vals[i] = v
			return
		}
		w.at[t] = len(w.order)
	}
	w.order, w.vals = append(w.order, t), append(w.vals, v)
}

// last is the last write to t.
func (w *batch) last(t target) (write, bool) {
	if i, ok := w.at[t]; ok {
		return w.vals[i], true
	}
	return write{}, false
}

// doc records that the batch touched a document: was is its JSON as
// stored, before the batch, d the document now, and entries as docWrite
// holds them.
func (w *batch) doc(key string, d Doc, was string, entries []Entry, settled bool) {
	t := target{kind: docKind, key: key}
	if i, ok := w.at[t]; ok {
		v := w.vals[i].docWrite
		v.doc = d
		if settled {
			if !v.settled {
				w.unsettled--
			} else {
				w.kept -= len(v.entries)
			}
			v.entries, v.settled = entries, true
			w.kept += len(entries)
		}
		return
	}
	if !settled {
		w.unsettled++
	} else {
		w.kept += len(entries)
	}
	w.set(t, write{docWrite: &docWrite{doc: d, was: was, entries: entries, settled: settled}})
}

// before is the entries of d, at key, before the event about to change
// it: listed when the batch has not touched it; nil when the batch
// touched it already, and compares its entries at its end; for a
// counting document, its entries as the last event left them (listing
// them again after each event was a tenth of a rebuild's work).
func (w *batch) before(key string, d Doc) []Entry {
	i, ok := w.at[target{kind: docKind, key: key}]
	switch {
	case !ok:
		return w.list(d)
	case !w.vals[i].settled:
		return nil
	case w.vals[i].doc == d:
		return w.vals[i].entries
	}
	return w.list(d)
}

// list lists d's entries (none for nil) in the batch's chunks, where they
// hold until reset. A chunk is filled and never grown: the entries listed
// are views into it, so an array grown by doubling kept every one it
// outgrew alive, and copied its entries into each, in a rebuild's every
// batch (the statistics' span of a log of offers lists about 50,000,
// 4.3 MB).
func (w *batch) list(d Doc) []Entry {
	if d == nil {
		return nil
	}
	if len(w.entries) == cap(w.entries) {
		w.nextChunk()
	}
	n := len(w.entries)
	out := d.Entries(w.entries[n:n])
	switch {
	case len(out) == 0:
	case &out[0] == &w.entries[:n+1][n]:
		w.entries = w.entries[:n+len(out)] // listed in place
	default:
		// longer than the chunk's room: out has an array of its own, and
		// the next listing starts the next chunk
		w.nextChunk()
	}
	return out[:len(out):len(out)]
}

// entryChunk is the most entries a chunk of a batch holds: a new offer
// lists about two dozen. A batch's first chunks are smaller (256, 512…),
// for the live runners, whose batches hold a few events each.
const entryChunk = 4096

// nextChunk makes the next chunk, kept or new, the one being filled.
func (w *batch) nextChunk() {
	if cap(w.entries) > 0 {
		w.chunk++
	}
	if w.chunk == len(w.chunks) {
		w.chunks = append(w.chunks, make([]Entry, 0, min(entryChunk, 256<<min(w.chunk, 4))))
	}
	w.entries = w.chunks[w.chunk][:0]
}

// finish adds the writes that turn each document's entries before the
// batch into its entries after it, and renders the document as JSON, once
// each however many of the batch's events touched it: listing and
// comparing the entries of every document after every event was a fifth
// of a rebuild's work. Each member, field or point has one contributor, so
// a document's change over the batch is the net of its events'. It tells
// src the documents' JSON and drops the unchanged ones. The documents must
// not change between finish and render.
func (w *batch) finish(src docSource) error {
	docs := len(w.order) // diff appends the entries' writes after them
	w.unshared = true    // the unsettled documents are those that count nothing
	defer func() { w.unshared = false }()
	for i := range docs {
		if w.order[i].kind != docKind {
			continue
		}
		v := w.vals[i].docWrite
		if v.settled {
			continue
		}
		after := w.list(v.doc)
		w.diff(v.entries, after)
		v.entries, v.settled = after, true
	}
	w.unsettled = 0
	for i := range docs {
		t := w.order[i]
		if t.kind != docKind {
			continue
		}
		v := w.vals[i].docWrite
		var err error
		if v.json = ""; v.doc != nil {
			if v.json, err = docJSON(v.doc); err != nil {
				return fmt.Errorf("%s: %w", t.key, err)
			}
		}
		v.same = v.json == v.was
		if !v.same {
			src.put(t.key, v.doc, v.json)
		}
	}
	return nil
}

// AppendJSON appends v as the read models store a document and answers
// write JSON, without a newline: HTML characters as they are (json.Marshal
// escapes them), so that a search copies a stored document into its page
// unchanged.
func AppendJSON(dst []byte, v any) ([]byte, error) {
	err := encodeJSON(v, func(b []byte) { dst = append(dst, b...) })
	return dst, err
}

// docJSON is d as AppendJSON renders it, in a string of its own: the
// document caches and the in-process server hold it.
func docJSON(d Doc) (s string, err error) {
	err = encodeJSON(d, func(b []byte) { s = string(b) })
	return s, err
}

// encodeJSON hands use v as AppendJSON renders it, in a buffer use must
// not keep.
func encodeJSON(v any, use func([]byte)) error {
	b := docBuffers.Get().(*bytes.Buffer)
	defer docBuffers.Put(b)
	b.Reset()
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	use(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
	return nil
}

// docBuffers are encodeJSON's buffers.
var docBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// diff adds the writes that turn a document's entries before into after.
func (w *batch) diff(before, after []Entry) {
	before, after = w.diffAligned(before, after)
	switch {
	case len(before) == 0:
		for _, e := range after {
			w.change(Entry{}, e)
		}
	case len(after) == 0:
		for _, e := range before {
			w.remove(e)
		}
	default:
		w.diffByTarget(before, after)
	}
}

// diffAligned handles the common case: most changes keep the entries in
// place. It trims what is equal at both ends, writes the changes of
// entries about the same targets while they line up, and returns the rest.
func (w *batch) diffAligned(before, after []Entry) ([]Entry, []Entry) {
	for len(before) > 0 && len(after) > 0 && before[0] == after[0] {
		before, after = before[1:], after[1:]
	}
	for len(before) > 0 && len(after) > 0 && before[len(before)-1] == after[len(after)-1] {
		before, after = before[:len(before)-1], after[:len(after)-1]
	}
	for len(before) > 0 && len(after) > 0 && before[0].target() == after[0].target() {
		w.change(before[0], after[0])
		before, after = before[1:], after[1:]
	}
	return before, after
}

// diffByTarget matches entries by target, whatever their order; counters
// of one target add up on each side.
func (w *batch) diffByTarget(before, after []Entry) {
	old := make(map[target]Entry, len(before))
	for _, e := range before {
		t := e.target()
		if b, dup := old[t]; dup && e.Kind == Counter {
			e.N += b.N
		}
		old[t] = e
	}
	for _, e := range after {
		t := e.target()
		b, had := old[t]
		switch {
		case e.Kind == Counter:
			w.add(t, e, e.N-b.N)
			if had {
				b.N = 0 // counted: a duplicate adds its own N
				old[t] = b
			}
		case !had || b != e:
			w.set(t, write{entry: e})
			delete(old, t)
		default:
			delete(old, t)
		}
	}
	for _, e := range before {
		t := e.target()
		left, ok := old[t]
		if !ok {
			continue
		}
		delete(old, t)
		e.N = left.N
		w.remove(e)
	}
}

// remove withdraws an entry: a counter loses its N.
func (w *batch) remove(e Entry) {
	if e.Kind == Counter {
		w.add(e.target(), e, -e.N)
	} else {
		w.set(e.target(), write{entry: e, removed: true})
	}
}

// change writes an entry whose value changed from b to e.
func (w *batch) change(b, e Entry) {
	if e.Kind == Counter {
		w.add(e.target(), e, e.N-b.N)
	} else if b != e {
		w.set(e.target(), write{entry: e})
	}
}

func (e Entry) target() target { return target{e.Kind, e.Key, e.Member} }

// add moves a counter by n. A counter moved and moved back still writes
// (by 0): one event at a time, it would have left the field in place.
func (w *batch) add(t target, e Entry, n int64) {
	if n == 0 {
		return
	}
	if cur, ok := w.last(t); ok {
		n += cur.entry.N
	}
	e.N = n
	w.set(t, write{entry: e})
}

// reset empties the batch for the next one.
func (w *batch) reset() {
	clear(w.at)
	clear(w.vals) // keeps no document alive until the next batch
	for _, c := range w.chunks[:min(w.chunk+1, len(w.chunks))] {
		clear(c[:cap(c)]) // with what a listing too long for its room left past the end
	}
	w.order, w.vals, w.chunk = w.order[:0], w.vals[:0], 0
	w.entries = nil
	if len(w.chunks) > 0 {
		w.entries = w.chunks[0][:0]
	}
	w.unsettled, w.kept = 0, 0
}

// renderDoc appends a document's write, if finish found it changed.
func (v write) renderDoc(key string, args []any) []any {
	switch {
	case v.same:
		return args
	case v.json == "":
		return append(args, 2, "DEL", key)
	}
	return append(args, 3, "SET", key, v.json)
}

// render appends the writes to args, as the apply script takes them: for
// each Redis command its argument count, then its arguments, on the
// generation at prefix. The members written to or removed from one key
// go in one command (SADD key m1 m2…): the writes of a batch of new
// offers are mostly members of the same few index sets, and each command
// costs a call in the script (a dispatch in process) besides its work.
// Members of one key commute, and a target is written once: the order
// between commands does not matter.
func (w *batch) render(prefix string, args []any) []any {
	next, groups := slices.Grow(w.next[:0], len(w.order))[:len(w.order)], w.groups[:0]
	if w.index == nil {
		w.index = map[[2]string]int{}
	}
	index := w.index
	for i, t := range w.order {
		v := &w.vals[i]
		switch t.kind {
		case docKind:
			args = v.renderDoc(prefix+t.key, args)
		case Counter:
			args = append(args, 4, "HINCRBY", prefix+t.key, v.entry.Member, v.entry.N)
		default:
			next[i] = -1
			cmd := command(t.kind, v.removed)
			if g, ok := index[[2]string{cmd, t.key}]; ok {
				next[groups[g].last], groups[g].last = i, i
			} else {
				index[[2]string{cmd, t.key}] = len(groups)
				groups = append(groups, memberGroup{cmd: cmd, key: t.key, first: i, last: i})
			}
		}
	}
	for _, g := range groups {
		for i := g.first; i >= 0; {
			at := len(args)
			args = append(args, 2, g.cmd, prefix+g.key)
			for ; i >= 0 && args[at].(int) < maxGroupArgs; i = next[i] {
				before := len(args)
				args = w.vals[i].renderMember(w.order[i].kind, args)
				args[at] = args[at].(int) + len(args) - before
			}
		}
	}
	// the scratch keeps no strings of this batch alive until the next
	clear(groups)
	clear(index)
	w.next, w.groups = next[:0], groups[:0]
	return args
}

// memberGroup is the writes of one command to one key: the first and the
// last of them, by their place in the batch.
type memberGroup struct {
	cmd, key    string
	first, last int
}

// maxGroupArgs bounds the arguments of one command rendered from several
// writes: Redis's Lua unpacks at most 8,000 values.
const maxGroupArgs = 1024

// command is the Redis command that writes (or removes) an entry of kind.
func command(kind EntryKind, removed bool) string {
	switch {
	case removed && kind == SetMember:
		return "SREM"
	case removed && kind == HashField:
		return "HDEL"
	case removed:
		return "ZREM"
	case kind == SetMember:
		return "SADD"
	case kind == SortedMember:
		return "ZADD"
	case kind == GeoPoint:
		return "GEOADD"
	}
	return "HSET"
}

// renderMember appends a command's arguments about the write of an entry
// of kind: its member alone when removed, else with its score, point or
// value.
func (v *write) renderMember(kind EntryKind, args []any) []any {
	e := &v.entry
	switch {
	case v.removed:
		return append(args, e.Member)
	case kind == SortedMember:
		return append(args, e.Score, e.Member)
	case kind == GeoPoint:
		return append(args, e.Lon, e.Lat, e.Member)
	case kind == HashField:
		return append(args, e.Member, e.Value)
	}
	return append(args, e.Member)
}
