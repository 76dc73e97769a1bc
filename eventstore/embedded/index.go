package embedded

import (
	"bytes"
	"errors"
	"slices"
	"strings"
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
// The committer alone writes it, under mu, as it writes the log records
// (so a later append of the same group sees them), before they are
// committed: a reader ignores the entries past its transaction's last log
// position. Readers take mu for reading before they begin their
// transaction and keep it until they are done with the index, so the
// generation a merge wrote is dropped only once no transaction from
// before the merge's last commit may still look for it here.
type recentIndex struct {
	mu  sync.RWMutex
	cur generation
	old generation // being merged; empty when no merge is under way
}

// generation is one generation of recent entries: events at consecutive
// positions, every one of them, the last at position last.
type generation struct {
	ids     map[uuid.UUID]uint64
	streams map[string]*recentStream
	events  int
	last    uint64
}

func newGeneration() generation {
	return generation{ids: map[uuid.UUID]uint64{}, streams: map[string]*recentStream{}}
}

// recentStream is a stream's recent revisions: base, base+1, … at the
// positions pos, in increasing order.
type recentStream struct {
	base uint64
	pos  []uint64
}

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
		if rs := g.streams[stream]; rs != nil && len(rs.pos) > 0 {
			return int64(rs.base) + int64(len(rs.pos)) - 1, true
		}
	}
	return 0, false
}

// add records an event the committer is writing at position pos, as
// revision rev of stream.
func (x *recentIndex) add(id uuid.UUID, stream string, rev, pos uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	g := &x.cur
	g.ids[id] = pos
	rs := g.streams[stream]
	if rs == nil {
		rs = &recentStream{base: rev}
		g.streams[stream] = rs
	}
	rs.pos = append(rs.pos, pos)
	g.last = pos
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
		rs := g.streams[a.stream]
		rs.pos = rs.pos[:len(rs.pos)-1]
		if len(rs.pos) == 0 {
			delete(g.streams, a.stream)
		}
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

// recentAdd is an event a group added to the index, to undo when its
// transaction is rolled back.
type recentAdd struct {
	id     uuid.UUID
	stream string
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
	if rs := x.old.streams[stream]; rs != nil && len(o.pos) < len(rs.pos) {
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
	rs := g.streams[stream]
	if rs == nil {
		return streamView{}
	}
	n := len(rs.pos)
	for n > 0 && rs.pos[n-1] > seq {
		n--
	}
	return streamView{base: rs.base, pos: rs.pos[:n:n]}
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
		for name := range g.streams {
			if v := x.view(name, seq); !v.empty() {
				snap.streams[name] = v
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
	names  []string
	puts   int // entries left to write
	id, nm int // next id and stream name to write
}

// merge starts the merge of the older generation; the committer runs it.
func (x *recentIndex) merge() *merge {
	g := &x.old
	m := &merge{g: g, ids: make([]uuid.UUID, 0, len(g.ids)), names: make([]string, 0, len(g.streams))}
	for id := range g.ids {
		m.ids = append(m.ids, id)
	}
	slices.SortFunc(m.ids, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	for name, rs := range g.streams {
		m.names = append(m.names, name)
		m.puts += len(rs.pos) + 1
	}
	slices.SortFunc(m.names, strings.Compare)
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
		name := m.names[m.nm]
		rs := m.g.streams[name]
		for i, pos := range rs.pos {
			if err := b.revs.Put(revKey(name, rs.base+uint64(i)), u64(pos)); err != nil {
				return err
			}
		}
		if err := b.streams.Put([]byte(name), u64(rs.base+uint64(len(rs.pos))-1)); err != nil {
			return err
		}
		written += len(rs.pos) + 1
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
