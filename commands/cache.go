package commands

import (
	"container/list"
	"reflect"
	"sync"
	"time"
	"unsafe"
)

// DefaultCacheSize is how many aggregates a Service keeps in memory.
const DefaultCacheSize = 10_000

// aggregateCache keeps the aggregates commands loaded, each with the
// stream state it was read at, so that the next command on the stream
// reads only the events after it. It holds only states folded from the
// log, never a command's own decision before the store confirmed it: a
// decision whose append turned out to be a deduplicated retry may differ
// from what the log holds. A state from the log is never wrong, only
// behind, so a concurrent change costs reading the events since.
//
// Cached aggregates hold opened personal data, in memory only; Forget
// empties the cache (see forgetAll).
type aggregateCache struct {
	mu      sync.Mutex
	max     int
	entries map[string]*list.Element // of *cacheEntry
	lru     list.List                // most recently used first
	epoch   uint64                   // bumped by forgetAll
}

type cacheEntry struct {
	stream string
	// agg is never changed: get and put copy it, and peek hands it out
	// only to commands that consult it (read)
	agg   aggregate
	state loaded
	// frozen is a copy of agg taken when it was cached, kept only when
	// CheckCache is set, to catch a reader changing what it was lent
	frozen aggregate
}

// CheckCache makes the cache verify, each time it lends an aggregate
// (peek) or replaces it, that no reader changed it, and each time it keeps
// a state a command wrote, that the stream read whole gives the same. Tests
// set it (this package's and the seed's, which plays a whole campaign); it
// costs a read of the stream per command, which no service pays.
var CheckCache = false

func newAggregateCache(max int) *aggregateCache {
	return &aggregateCache{max: max, entries: map[string]*list.Element{}}
}

// begin returns the epoch a load starts in, to hand to put.
func (c *aggregateCache) begin() uint64 {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch
}

// get returns a copy of the cached aggregate of stream and its state.
func (c *aggregateCache) get(stream string) (aggregate, loaded, bool) {
	e := c.entry(stream)
	if e == nil {
		return nil, loaded{}, false
	}
	return deepCopy(e.agg), e.state, true // e.agg is never changed: copy outside the lock
}

// peek returns the cached aggregate of stream itself, not a copy, and
// its state: the caller only reads it and never changes it.
func (c *aggregateCache) peek(stream string) (aggregate, loaded, bool) {
	e := c.entry(stream)
	if e == nil {
		return nil, loaded{}, false
	}
	e.verify()
	return e.agg, e.state, true
}

// entry is stream's entry, the most recently used from now on; nil when
// the stream is not cached.
func (c *aggregateCache) entry(stream string) *cacheEntry {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[stream]
	if !ok {
		return nil
	}
	c.lru.MoveToFront(el)
	return el.Value.(*cacheEntry)
}

// verify panics when CheckCache is set and a reader changed the
// aggregate it was lent.
func (e *cacheEntry) verify() {
	if CheckCache && !reflect.DeepEqual(e.agg, e.frozen) {
		panic("commands: the cached aggregate of " + e.stream + " was changed by a reader")
	}
}

// put keeps a copy of agg at state, unless a newer state is cached or a
// forget happened since the load began (epoch).
func (c *aggregateCache) put(agg aggregate, state loaded, epoch uint64) {
	if c == nil || c.max <= 0 {
		return
	}
	c.keep(deepCopy(agg), state, epoch)
}

// keep is put without the copy: agg is the cache's from now on, and
// whoever holds it only reads it.
func (c *aggregateCache) keep(agg aggregate, state loaded, epoch uint64) {
	if c == nil || c.max <= 0 {
		return
	}
	e := &cacheEntry{stream: state.stream, agg: agg, state: state}
	if CheckCache {
		e.frozen = deepCopy(agg)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if epoch != c.epoch {
		return
	}
	if el, ok := c.entries[e.stream]; ok {
		c.lru.MoveToFront(el)
		if old := el.Value.(*cacheEntry); old.state.revision < state.revision {
			old.verify()
			el.Value = e
		}
		return
	}
	c.entries[e.stream] = c.lru.PushFront(e)
	for c.lru.Len() > c.max {
		last := c.lru.Back()
		c.lru.Remove(last)
		delete(c.entries, last.Value.(*cacheEntry).stream)
	}
}

// drop forgets the cached state of stream.
func (c *aggregateCache) drop(stream string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[stream]; ok {
		c.lru.Remove(el)
		delete(c.entries, stream)
	}
}

// forgetAll empties the cache, and refuses the states of loads under way,
// once a person's key is destroyed: their personal data, opened before,
// must not outlive it here. Forgetting is rare enough that emptying
// everything is cheaper than tracking whose data each aggregate holds.
func (c *aggregateCache) forgetAll() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	clear(c.entries)
	c.lru.Init()
}

// len is how many aggregates are cached.
func (c *aggregateCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// deepCopy copies an aggregate (a pointer to a struct) with everything it
// points to, unexported fields included, so that folding more events into
// the copy never shows through in the original. Aggregates are plain data
// (structs, maps, slices, pointers); a time.Time is copied as a value.
// Every load copies, so the walk skips what a plain assignment copies
// fully: values holding no pointer, map, slice or interface (strings are
// immutable) are assigned whole, and a struct is assigned whole before its
// few deep fields are replaced.
func deepCopy(agg aggregate) aggregate {
	return copyValue(reflect.ValueOf(agg)).Interface().(aggregate)
}

var timeType = reflect.TypeFor[time.Time]()

// shapes caches, by type, the fields a copy must walk (deepShape).
var shapes sync.Map // reflect.Type -> *shape

// shape is what a copy of a type must walk: nothing when !deep; for a
// struct, the indexes of its deep fields.
type shape struct {
	deep   bool
	fields []int
}

func shapeOf(t reflect.Type) *shape {
	if s, ok := shapes.Load(t); ok {
		return s.(*shape)
	}
	s := &shape{}
	switch t.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface:
		s.deep = true
	case reflect.Array:
		s.deep = shapeOf(t.Elem()).deep
	case reflect.Struct:
		if t == timeType {
			break
		}
		for i := range t.NumField() {
			if shapeOf(t.Field(i).Type).deep {
				s.fields = append(s.fields, i)
			}
		}
		s.deep = len(s.fields) > 0
	}
	shapes.Store(t, s)
	return s
}

// copyValue returns a copy of v sharing nothing mutable with it; a value
// that is not deep is returned as is, to be assigned.
func copyValue(v reflect.Value) reflect.Value {
	sh := shapeOf(v.Type())
	if !sh.deep {
		return v
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return reflect.Zero(v.Type())
		}
		p := reflect.New(v.Type().Elem())
		p.Elem().Set(copyValue(v.Elem()))
		return p
	case reflect.Map:
		return copyMap(v)
	case reflect.Slice:
		return copySlice(v)
	case reflect.Array:
		a := reflect.New(v.Type()).Elem()
		for i := range v.Len() {
			a.Index(i).Set(copyValue(v.Index(i)))
		}
		return a
	case reflect.Interface:
		if v.IsNil() {
			return reflect.Zero(v.Type())
		}
		w := reflect.New(v.Type()).Elem()
		w.Set(copyValue(v.Elem()))
		return w
	case reflect.Struct:
		return copyStruct(v, sh.fields)
	default:
		return v
	}
}

func copyMap(v reflect.Value) reflect.Value {
	if v.IsNil() {
		return reflect.Zero(v.Type())
	}
	m := reflect.MakeMapWithSize(v.Type(), v.Len())
	for it := v.MapRange(); it.Next(); {
		m.SetMapIndex(it.Key(), copyValue(it.Value())) // keys are comparable values
	}
	return m
}

func copySlice(v reflect.Value) reflect.Value {
	if v.IsNil() {
		return reflect.Zero(v.Type())
	}
	s := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
	if !shapeOf(v.Type().Elem()).deep {
		reflect.Copy(s, v)
		return s
	}
	for i := range v.Len() {
		s.Index(i).Set(copyValue(v.Index(i)))
	}
	return s
}

// copyStruct assigns v whole, then replaces its deep fields (reached
// through their address, unexported ones included) with their copies.
func copyStruct(v reflect.Value, deep []int) reflect.Value {
	out := reflect.New(v.Type()).Elem()
	out.Set(v)
	for _, i := range deep {
		f := field(out, i)
		f.Set(copyValue(f))
	}
	return out
}

// field is the i-th field of the addressable struct v, usable even when
// unexported.
func field(v reflect.Value, i int) reflect.Value {
	f := v.Field(i)
	return reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
}
