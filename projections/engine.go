package projections

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// A read model is a set of JSON documents, each the fold of the events
// about one thing (an offer, an application, a pupil…). A document also
// contributes entries to keys it shares with other documents: members of
// search indexes, of a school's sets, of sorted lists, geographic points,
// hash fields and counters. A projector only folds events into documents,
// in memory; the engine (project) loads the documents an event touches,
// lets the projector fold it, and writes each changed document with the
// difference between its entries before and after. The live runner and
// the rebuild run the same engine and differ only in where documents are
// read from.

// Doc is a read-model document, stored as JSON under its key.
type Doc interface {
	// Entries lists what the document contributes to shared keys; it
	// depends on the document's stored fields only.
	Entries() []Entry
}

// Docs are the documents an event folds into, by key relative to the
// generation; a nil value is an absent document.
type Docs map[string]Doc

// Ref names a document and its type.
type Ref struct {
	Key string
	New func() Doc // an empty document to decode into
}

// ref is the Ref of a document of type *T.
func ref[T any, P interface {
	*T
	Doc
}](key string) Ref {
	return Ref{Key: key, New: func() Doc { return P(new(T)) }}
}

// doc returns the document at key, nil when absent.
func doc[T any, P interface {
	*T
	Doc
}](docs Docs, key string) P {
	d, _ := docs[key].(P)
	return d
}

// Projector folds events into the documents of one read model.
type Projector interface {
	Name() string
	// Touches names the documents ev folds into. It is asked again with
	// the documents loaded so far until it names no new one, so that a
	// loaded document can name others (a convention its pupil).
	Touches(ev Event, docs Docs) []Ref
	// Apply folds ev into docs: it changes them in place, adds the absent
	// ones it creates, or sets a key to nil to delete its document. It may
	// only change documents Touches named.
	Apply(ev Event, docs Docs)
}

// EntryKind is the kind of a shared key an entry is part of.
type EntryKind uint8

const (
	SetMember    EntryKind = iota // SADD / SREM
	SortedMember                  // ZADD with Score / ZREM
	GeoPoint                      // GEOADD with Lon, Lat / ZREM
	HashField                     // HSET with Value / HDEL
	Counter                       // HINCRBY by the difference of N
)

// Entry is one contribution of a document to a shared key. Two documents
// never contribute the same member or field, except to counters, which add
// up.
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
	// get returns the stored JSON of each key, nil when absent.
	get(keys []string) ([][]byte, error)
	// put records a document an event changed (nil: deleted).
	put(key string, b []byte)
}

// maxTouchRounds bounds the documents naming other documents.
const maxTouchRounds = 4

// project folds ev into the documents of p it touches, read from src, and
// adds the writes to w.
func project(p Projector, ev Event, src docSource, w *batch) error {
	docs, stored, err := load(p, ev, src)
	if err != nil {
		return err
	}
	before := make(map[string][]Entry, len(docs))
	for k, d := range docs {
		if d != nil {
			before[k] = d.Entries()
		}
	}
	p.Apply(ev, docs)
	for _, k := range slices.Sorted(maps.Keys(docs)) {
		old, ok := stored[k]
		if !ok {
			return fmt.Errorf("%s changed %s, which it did not touch", p.Name(), k)
		}
		var b []byte
		var after []Entry
		if d := docs[k]; d != nil {
			if b, err = json.Marshal(d); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			after = d.Entries()
		}
		if bytes.Equal(b, old) {
			continue
		}
		src.put(k, b)
		w.doc(k, b)
		w.diff(before[k], after)
	}
	return nil
}

// load reads the documents ev touches; stored holds their JSON as read.
func load(p Projector, ev Event, src docSource) (docs Docs, stored map[string][]byte, err error) {
	docs, stored = Docs{}, map[string][]byte{}
	for round := 0; ; round++ {
		var refs []Ref
		var keys []string
		for _, r := range p.Touches(ev, docs) {
			if _, ok := stored[r.Key]; !ok && !slices.Contains(keys, r.Key) {
				refs, keys = append(refs, r), append(keys, r.Key)
			}
		}
		if len(refs) == 0 {
			return docs, stored, nil
		}
		if round == maxTouchRounds {
			return nil, nil, fmt.Errorf("%s: documents keep naming others (%v)", p.Name(), keys)
		}
		bs, err := src.get(keys)
		if err != nil {
			return nil, nil, err
		}
		for i, r := range refs {
			stored[r.Key], docs[r.Key] = bs[i], nil
			if bs[i] == nil {
				continue
			}
			d := r.New()
			if err := json.Unmarshal(bs[i], d); err != nil {
				return nil, nil, fmt.Errorf("%s: %w", r.Key, err)
			}
			docs[r.Key] = d
		}
	}
}

// batch is the writes of one or more events to a generation, reduced to
// their net effect: the last value of each document and entry, the sum of
// each counter's changes.
type batch struct {
	order []target
	last  map[target]write
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
	json    []byte // a document's, nil to delete it
}

func newBatch() *batch { return &batch{last: map[target]write{}} }

func (w *batch) set(t target, v write) {
	if _, ok := w.last[t]; !ok {
		w.order = append(w.order, t)
	}
	w.last[t] = v
}

func (w *batch) doc(key string, b []byte) { w.set(target{kind: docKind, key: key}, write{json: b}) }

// diff adds the writes that turn a document's entries before into after.
func (w *batch) diff(before, after []Entry) {
	if slices.Equal(before, after) {
		return
	}
	old := make(map[target]Entry, len(before))
	for _, e := range before {
		old[target{e.Kind, e.Key, e.Member}] = e
	}
	for _, e := range after {
		t := target{e.Kind, e.Key, e.Member}
		b, had := old[t]
		delete(old, t)
		switch {
		case e.Kind == Counter:
			w.add(t, e, e.N-b.N)
		case !had || b != e:
			w.set(t, write{entry: e})
		}
	}
	for t, e := range old {
		if e.Kind == Counter {
			w.add(t, e, -e.N)
		} else {
			w.set(t, write{entry: e, removed: true})
		}
	}
}

// add moves a counter by n. A counter moved and moved back still writes
// (by 0): one event at a time, it would have left the field in place.
func (w *batch) add(t target, e Entry, n int64) {
	if n == 0 {
		return
	}
	if cur, ok := w.last[t]; ok {
		n += cur.entry.N
	}
	e.N = n
	w.set(t, write{entry: e})
}

func (w *batch) empty() bool { return len(w.order) == 0 }

// cmds renders the writes as Redis commands on the generation at prefix.
func (w *batch) cmds(prefix string) []Cmd {
	out := make([]Cmd, 0, len(w.order))
	for _, t := range w.order {
		v, key := w.last[t], prefix+t.key
		e := v.entry
		switch {
		case t.kind == docKind && v.json == nil:
			out = append(out, Cmd{"DEL", key})
		case t.kind == docKind:
			out = append(out, Cmd{"SET", key, v.json})
		case t.kind == Counter:
			out = append(out, Cmd{"HINCRBY", key, e.Member, e.N})
		case v.removed && t.kind == SetMember:
			out = append(out, Cmd{"SREM", key, e.Member})
		case v.removed && t.kind == HashField:
			out = append(out, Cmd{"HDEL", key, e.Member})
		case v.removed:
			out = append(out, Cmd{"ZREM", key, e.Member})
		case t.kind == SetMember:
			out = append(out, Cmd{"SADD", key, e.Member})
		case t.kind == SortedMember:
			out = append(out, Cmd{"ZADD", key, e.Score, e.Member})
		case t.kind == GeoPoint:
			out = append(out, Cmd{"GEOADD", key, e.Lon, e.Lat, e.Member})
		case t.kind == HashField:
			out = append(out, Cmd{"HSET", key, e.Member, e.Value})
		}
	}
	return out
}
