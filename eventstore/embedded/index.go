package embedded

import (
	"bytes"
	"errors"
	"hash/maphash"
	"slices"
	"sync"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"
)

// recentIndex holds the ids, revs and streams entries of the events
// appended since bbolt's buckets last received them (see doc.go), in two
// generations: the current one, which the committer adds to, and, while
// a merge is under way, the older one it is writing into bbolt between
// groups. An entry is durable as its event is: through the write-ahead
// log, which Open replays into bbolt with its index entries.
//
// The committer alone writes it, under mu, once it wrote a group's log
// records (a later append of the same group finds the group's entries in
// a groupIndex until then), before they are committed: a reader ignores
// the entries past its transaction's last log position. Readers take mu
// for reading before they begin their transaction and keep it until they
// are done with the index, so the generation a merge wrote is dropped
// only once no transaction from before the merge's last commit may still
// look for it here.
type recentIndex struct {
	mu  sync.RWMutex
	cur generation
	old generation // being merged; empty when no merge is under way
}

// generation is one generation of recent entries: events at consecutive
// positions, every one of them, the last at position last.
//
// A national seed keeps millions of entries here. They hold no pointers,
// so that the garbage collector need not mark them: stream names are laid
// end to end in one arena, each stream is a record of offsets into it and
// into an arena of positions, and streams are found by a hash of their
// name, checked on use (the rare name whose hash another name has is
// found by name in spill).
type generation struct {
	ids     map[uuid.UUID]uint64
	byHash  map[uint64]int32 // a stream's record, by the hash of its name
	spill   map[string]int32 // a stream's record, when byHash names another stream
	streams []recentStream
	names   []byte
	pos     []uint64
	events  int
	last    uint64
}

func newGeneration() generation {
	return generation{ids: map[uuid.UUID]uint64{}, byHash: map[uint64]int32{}}
}

// recentStream is a stream's recent revisions: base, base+1, … at the
// positions pos[first:first+n], in increasing order; the arena holds room
// for room of them there.
type recentStream struct {
	name, nameLen int
	base          uint64
	first, n      int
	room          int
}

// nameOf is the name of a stream of g.
func (g *generation) nameOf(rs *recentStream) []byte {
	return g.names[rs.name : rs.name+rs.nameLen]
}

// find is the record of stream, whose name hashes to h, or -1.
func (g *generation) find(stream string, h uint64) int32 {
	if i, ok := g.byHash[h]; ok && string(g.nameOf(&g.streams[i])) == stream {
		return i
	}
	if i, ok := g.spill[stream]; ok {
		return i
	}
	return -1
}

// stream is the record of stream, if it has one with revisions.
func (g *generation) stream(stream string) (*recentStream, bool) {
	i := g.find(stream, hashName(stream))
	if i < 0 {
		return nil, false
	}
	return &g.streams[i], true
}

// positions is a stream's positions.
func (g *generation) positions(rs *recentStream) []uint64 {
	return g.pos[rs.first : rs.first+rs.n : rs.first+rs.n]
}

// add records revision rev of stream at position pos.
func (g *generation) add(stream string, rev, pos uint64) {
	h := hashName(stream)
	i := g.find(stream, h)
	if i < 0 {
		i = int32(len(g.streams))
		g.streams = append(g.streams, recentStream{name: len(g.names), nameLen: len(stream), base: rev})
		g.names = append(g.names, stream...)
		if _, taken := g.byHash[h]; !taken {
			g.byHash[h] = i
		} else {
			if g.spill == nil {
				g.spill = map[string]int32{}
			}
			g.spill[stream] = i
		}
	}
	rs := &g.streams[i]
	if rs.n == rs.room {
		// moved to the end of the arena with twice the room; the old
		// place is left as it is, for the readers that may still look
		rs.room = max(2, 2*rs.room)
		first := len(g.pos)
		g.pos = append(g.pos, g.positions(rs)...)
		g.pos = append(g.pos, make([]uint64, rs.room-rs.n)...)
		rs.first = first
	}
	g.pos[rs.first+rs.n] = pos
	rs.n++
}

// remove forgets the last revision of stream.
func (g *generation) remove(stream string) {
	h := hashName(stream)
	i := g.find(stream, h)
	rs := &g.streams[i]
	rs.n--
	if rs.n > 0 {
		return
	}
	if j, ok := g.byHash[h]; ok && j == i {
		delete(g.byHash, h)
	} else {
		delete(g.spill, stream)
	}
}

// hashName hashes a stream's name; a test makes every name collide.
var hashName = func(stream string) uint64 { return maphash.String(hashSeed, stream) }

var hashSeed = maphash.MakeSeed()

func newRecentIndex() *recentIndex {
	return &recentIndex{cur: newGeneration(), old: newGeneration()}
}

// pending is how many events have index entries only here.
func (x *recentIndex) pending() int { return x.cur.events + x.old.events }

// id is the position of an event among the recent entries; for the
// committer only.
func (x *recentIndex) id(id uuid.UUID) (uint64, bool) {
	if pos, ok := x.cur.ids[id]; ok {
		return pos, true
	}
	pos, ok := x.old.ids[id]
	return pos, ok
}

// last is a stream's last revision among the recent entries, committed
// or not; for the committer only.
func (x *recentIndex) last(stream string) (int64, bool) {
	for _, g := range [2]*generation{&x.cur, &x.old} {
		if rs, ok := g.stream(stream); ok {
			return int64(rs.base) + int64(rs.n) - 1, true
		}
	}
	return 0, false
}

// add records an event the committer is writing at position pos, as
// revision rev of stream.
func (x *recentIndex) add(id uuid.UUID, stream string, rev, pos uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.cur.addEvent(recentAdd{id: id, stream: stream, rev: rev, pos: pos})
}

// addAll records the events of a group, in order, under one lock: taken
// for each event, it kept the committer waiting on the readers holding it
// for a sixth of its time in a département's seed.
func (x *recentIndex) addAll(added []recentAdd) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, a := range added {
		x.cur.addEvent(a)
	}
}

func (g *generation) addEvent(a recentAdd) {
	g.ids[a.id] = a.pos
	g.add(a.stream, a.rev, a.pos)
	g.last = a.pos
	g.events++
}

// undo forgets the events a group added, latest first: its
// transaction was rolled back, and its positions will be taken again.
func (x *recentIndex) undo(added []recentAdd) {
	x.mu.Lock()
	defer x.mu.Unlock()
	g := &x.cur
	for i := len(added) - 1; i >= 0; i-- {
		a := added[i]
		delete(g.ids, a.id)
		g.remove(a.stream)
		g.events--
		g.last--
	}
}

// freeze makes the current generation the one to merge, and starts a new
// one; false when there is nothing to merge. No merge may be under way.
func (x *recentIndex) freeze() bool {
	if x.cur.events == 0 {
		return false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.old, x.cur = x.cur, newGeneration()
	return true
}

// dropOld drops the generation a merge wrote into bbolt, once committed.
func (x *recentIndex) dropOld() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.old = newGeneration()
}

// recentAdd is an event a group adds to the index: revision rev of
// stream at position pos. It is undone when its transaction is rolled
// back.
type recentAdd struct {
	id       uuid.UUID
	stream   string
	rev, pos uint64
}

// groupIndex is the entries of the group the committer is writing, not in
// the recent index yet: the position of each event and the last revision
// of each stream.
type groupIndex struct {
	ids  map[uuid.UUID]uint64
	last map[string]uint64
}

func newGroupIndex() *groupIndex {
	return &groupIndex{ids: map[uuid.UUID]uint64{}, last: map[string]uint64{}}
}

func (g *groupIndex) reset() {
	clear(g.ids)
	clear(g.last)
}

// streamView is what a reader sees of a stream's recent revisions: the
// positions of revisions base, base+1, … that its transaction holds.
// Those elements are never written again, so it may keep them after
// releasing the index.
type streamView struct {
	base uint64
	pos  []uint64
}

// view returns the part of a stream's recent revisions at positions up
// to seq, in both generations. The caller holds mu for reading.
func (x *recentIndex) view(stream string, seq uint64) streamView {
	o := x.old.view(stream, seq)
	if rs, ok := x.old.stream(stream); ok && len(o.pos) < rs.n {
		return o // the current generation's are later still
	}
	c := x.cur.view(stream, seq)
	switch {
	case c.empty():
		return o
	case o.empty():
		return c
	}
	pos := make([]uint64, 0, len(o.pos)+len(c.pos))
	return streamView{base: o.base, pos: append(append(pos, o.pos...), c.pos...)}
}

func (g *generation) view(stream string, seq uint64) streamView {
	rs, ok := g.stream(stream)
	if !ok {
		return streamView{}
	}
	pos := g.positions(rs)
	n := len(pos)
	for n > 0 && pos[n-1] > seq {
		n--
	}
	return streamView{base: rs.base, pos: pos[:n:n]}
}

func (v streamView) empty() bool { return len(v.pos) == 0 }

func (v streamView) last() uint64 { return v.base + uint64(len(v.pos)) - 1 }

// position is the position of revision rev, when the view holds it.
func (v streamView) position(rev uint64) (uint64, bool) {
	if rev < v.base || rev-v.base >= uint64(len(v.pos)) {
		return 0, false
	}
	return v.pos[rev-v.base], true
}

// snapshot copies the entries at positions up to seq, for Store.Check.
// The caller holds mu for reading.
func (x *recentIndex) snapshot(seq uint64) recentSnapshot {
	snap := recentSnapshot{ids: make(map[uuid.UUID]uint64, x.pending()), streams: map[string]streamView{}}
	for _, g := range [2]*generation{&x.old, &x.cur} {
		for id, pos := range g.ids {
			if pos <= seq {
				snap.ids[id] = pos
			}
		}
		for i := range g.streams {
			if rs := &g.streams[i]; rs.n > 0 {
				name := string(g.nameOf(rs))
				if v := x.view(name, seq); !v.empty() {
					snap.streams[name] = v
				}
			}
		}
	}
	return snap
}

// recentSnapshot is a copy of the recent entries a transaction holds.
type recentSnapshot struct {
	ids     map[uuid.UUID]uint64
	streams map[string]streamView
}

// merge is a merge of the older generation into bbolt under way: its ids
// and stream names in key order, and how far it went. Writing in key
// order visits each page of an index once per transaction.
type merge struct {
	g      *generation
	ids    []uuid.UUID
	names  []int32 // the generation's streams, by name
	puts   int     // entries left to write
	id, nm int     // next id and stream name to write
}

// merge starts the merge of the older generation; the committer runs it.
func (x *recentIndex) merge() *merge {
	g := &x.old
	m := &merge{g: g, ids: make([]uuid.UUID, 0, len(g.ids)), names: make([]int32, 0, len(g.streams))}
	for id := range g.ids {
		m.ids = append(m.ids, id)
	}
	slices.SortFunc(m.ids, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	for i := range g.streams {
		if rs := &g.streams[i]; rs.n > 0 {
			m.names = append(m.names, int32(i))
			m.puts += rs.n + 1
		}
	}
	slices.SortFunc(m.names, func(a, b int32) int {
		return bytes.Compare(g.nameOf(&g.streams[a]), g.nameOf(&g.streams[b]))
	})
	m.puts += len(m.ids)
	return m
}

func (m *merge) done() bool { return m.puts == 0 }

// write writes the next n entries or so (a stream's revs and streams
// entries go together) into b; n <= 0: every entry left.
func (m *merge) write(b buckets, n int) error {
	if b.ids == nil || b.revs == nil || b.streams == nil {
		return errors.New("missing index bucket")
	}
	written := 0
	for ; m.id < len(m.ids) && (n <= 0 || written < n); m.id++ {
		id := m.ids[m.id]
		if err := b.ids.Put(append([]byte(nil), id[:]...), u64(m.g.ids[id])); err != nil {
			return err
		}
		written++
	}
	for ; m.nm < len(m.names) && (n <= 0 || written < n); m.nm++ {
		rs := &m.g.streams[m.names[m.nm]]
		name := m.g.nameOf(rs)
		for i, pos := range m.g.positions(rs) {
			if err := b.revs.Put(appendRevKey(make([]byte, 0, len(name)+9), name, rs.base+uint64(i)), u64(pos)); err != nil {
				return err
			}
		}
		if err := b.streams.Put(name, u64(rs.base+uint64(rs.n)-1)); err != nil {
			return err
		}
		written += rs.n + 1
	}
	m.puts -= written
	return nil
}

// viewIndexed runs fn in a read transaction with the recent entries it
// holds: look runs first, with the index held, and returns what fn needs
// of it.
func (s *Store) viewIndexed(look func(seq uint64), fn func(tx *bolt.Tx) error) error {
	if s.closed() {
		return ErrClosed
	}
	s.recent.mu.RLock()
	tx, err := s.db.Begin(false)
	if err != nil {
		s.recent.mu.RUnlock()
		return mapClosed(err)
	}
	look(tx.Bucket(bucketLog).Sequence())
	s.recent.mu.RUnlock()
	defer func() { _ = tx.Rollback() }()
	return mapClosed(fn(tx))
}
