package projections

import (
	"fmt"
	"reflect"
	"testing"

	"passerelle/eventstore"
	"passerelle/internal/testsupport/eventgen"
)

// typedDocs is an in-memory docSource that remembers each document's type.
type typedDocs struct {
	json  map[string]string
	docs  map[string]Doc // as put last
	types map[string]Ref
}

func (m typedDocs) get(refs []Ref) ([]Doc, []string, error) {
	docs, raw := make([]Doc, len(refs)), make([]string, len(refs))
	for i, r := range refs {
		m.types[r.Key], raw[i] = r, m.json[r.Key]
		if d, ok := m.docs[r.Key]; ok {
			docs[i] = d
			continue
		}
		var err error
		if docs[i], err = decode(r, raw[i]); err != nil {
			return nil, nil, err
		}
	}
	return docs, raw, nil
}

func (m typedDocs) put(k string, d Doc, b string) {
	m.docs[k], m.json[k] = d, b
	if _, ok := m.types[k]; !ok && d != nil {
		// a document its event created: never read, so never typed by get
		t := reflect.TypeOf(d).Elem()
		m.types[k] = Ref{Key: k, Type: reflectType{t}}
	}
}

// reflectType is the DocType of a document type known at run time.
type reflectType struct{ t reflect.Type }

func (r reflectType) New() Doc { return reflect.New(r.t).Interface().(Doc) }

// The shared keys the engine writes hold exactly what the documents list
// in their entries, one event at a time (the live runner) and in batches
// of events (the rebuild), for every projection over a random log.
func TestSharedKeysHoldTheDocumentsEntries(t *testing.T) {
	var events []Event
	for _, c := range eventgen.New(eventgen.Options{Seed: 11}).Generate(6_000) {
		for _, a := range c.Appends {
			for _, e := range a.Events {
				events = append(events, Event{Position: eventstore.Position(len(events) + 1), Stream: a.Stream, Data: e})
			}
		}
	}
	for _, p := range All() {
		for _, size := range []int{1, 97} {
			t.Run(fmt.Sprintf("%s/batch-%d", p.Name(), size), func(t *testing.T) {
				src := typedDocs{json: map[string]string{}, docs: map[string]Doc{}, types: map[string]Ref{}}
				shared := map[target]Entry{}
				w := newBatch(0, 0)
				for i, ev := range events {
					if err := project(p, ev, src, w); err != nil {
						t.Fatal(err)
					}
					if (i+1)%size != 0 && i+1 != len(events) {
						continue
					}
					if err := w.finish(src); err != nil {
						t.Fatal(err)
					}
					applyWrites(shared, w)
					w.reset()
					if (i+1)%(size*50) == 0 || i+1 == len(events) {
						sameEntries(t, ev, shared, src)
					}
				}
			})
		}
	}
}

// applyWrites applies a batch's writes to a model of the shared keys.
func applyWrites(shared map[target]Entry, w *batch) {
	for i, t := range w.order {
		v := w.vals[i]
		switch {
		case t.kind == docKind:
		case t.kind == Counter:
			e := shared[t]
			e.N += v.entry.N
			v.entry.N = e.N
			shared[t] = v.entry
		case v.removed:
			delete(shared, t)
		default:
			shared[t] = v.entry
		}
	}
}

func sameEntries(t *testing.T, ev Event, shared map[target]Entry, src typedDocs) {
	t.Helper()
	want := map[target]Entry{}
	for k, b := range src.json {
		d, err := decode(src.types[k], b)
		if err != nil || d == nil {
			continue
		}
		for _, e := range d.Entries(nil) {
			if c, ok := want[e.target()]; ok && e.Kind != Counter {
				t.Fatalf("%s: %s is listed twice (%+v)", k, e.Member, c)
			}
			if e.Kind == Counter {
				e.N += want[e.target()].N
			}
			want[e.target()] = e
		}
	}
	for tg, e := range shared {
		if w, ok := want[tg]; !ok && (e.Kind != Counter || e.N != 0) || ok && w != e {
			t.Fatalf("after %T at %d: %s %s is %+v, the documents list %+v", ev.Data, ev.Position, tg.key, tg.member, e, w)
		}
	}
	for tg, e := range want {
		if _, ok := shared[tg]; !ok && (e.Kind != Counter || e.N != 0) {
			t.Fatalf("after %T at %d: %s %s is missing, the documents list %+v", ev.Data, ev.Position, tg.key, tg.member, e)
		}
	}
}
