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
// appended since the last checkpoint; the checkpoint merges them into
// bbolt in one sorted pass and starts it over (see doc.go). An entry is
// durable as its event is: through the write-ahead log, which Open
// replays into bbolt with its index entries.
//
// The committer alone writes it, under mu, as it writes the log records
// (so a later append of the same group sees them), before they are
// committed: a reader ignores the entries past its transaction's last log
// position. Readers take mu for reading before they begin their
// transaction and keep it until they are done with the index, so the
// entries a checkpoint merged are dropped only once no transaction from
// before the merge may still look for them here.
type recentIndex struct {
	mu      sync.RWMutex
	ids     map[uuid.UUID]uint64
	streams map[string]*recentStream
	events  int
}

// recentStream is a stream's recent revisions: base, base+1, … at the
// positions pos, in increasing order.
type recentStream struct {
	base uint64
	pos  []uint64
}

func newRecentIndex() *recentIndex {
	return &recentIndex{ids: map[uuid.UUID]uint64{}, streams: map[string]*recentStream{}}
}

// last is a stream's last revision among the recent entries, committed
// or not; for the committer only.
func (x *recentIndex) last(stream string) (int64, bool) {
	rs := x.streams[stream]
	if rs == nil || len(rs.pos) == 0 {
		return 0, false
	}
	return int64(rs.base) + int64(len(rs.pos)) - 1, true
}

// add records an event the committer is writing at position pos, as
// revision rev of stream.
func (x *recentIndex) add(id uuid.UUID, stream string, rev, pos uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.ids[id] = pos
	rs := x.streams[stream]
	if rs == nil {
		rs = &recentStream{base: rev}
		x.streams[stream] = rs
	}
	rs.pos = append(rs.pos, pos)
	x.events++
}

// undo forgets the events a group added, latest first: its
// transaction was rolled back, and its positions will be taken again.
func (x *recentIndex) undo(added []recentAdd) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for i := len(added) - 1; i >= 0; i-- {
		a := added[i]
		delete(x.ids, a.id)
		rs := x.streams[a.stream]
		rs.pos = rs.pos[:len(rs.pos)-1]
		if len(rs.pos) == 0 {
			delete(x.streams, a.stream)
		}
		x.events--
	}
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
// to seq. The caller holds mu for reading.
func (x *recentIndex) view(stream string, seq uint64) streamView {
	rs := x.streams[stream]
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
	snap := recentSnapshot{ids: make(map[uuid.UUID]uint64, len(x.ids)), streams: make(map[string]streamView, len(x.streams))}
	for id, pos := range x.ids {
		if pos <= seq {
			snap.ids[id] = pos
		}
	}
	for name := range x.streams {
		if v := x.view(name, seq); !v.empty() {
			snap.streams[name] = v
		}
	}
	return snap
}

// recentSnapshot is a copy of the recent entries a transaction holds.
type recentSnapshot struct {
	ids     map[uuid.UUID]uint64
	streams map[string]streamView
}

// merge is a merge of the recent entries into bbolt under way: the ids
// and stream names in key order, and how far it went. Writing in key
// order visits each page of an index once, and the commit writes it once.
type merge struct {
	x      *recentIndex
	ids    []uuid.UUID
	names  []string
	puts   int // entries left to write
	id, nm int // next id and stream name to write
}

func (x *recentIndex) merge() *merge {
	m := &merge{x: x, ids: make([]uuid.UUID, 0, len(x.ids)), names: make([]string, 0, len(x.streams))}
	for id := range x.ids {
		m.ids = append(m.ids, id)
	}
	slices.SortFunc(m.ids, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	for name, rs := range x.streams {
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
		if err := b.ids.Put(append([]byte(nil), id[:]...), u64(m.x.ids[id])); err != nil {
			return err
		}
		written++
	}
	for ; m.nm < len(m.names) && (n <= 0 || written < n); m.nm++ {
		name := m.names[m.nm]
		rs := m.x.streams[name]
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

// reset drops every entry, once a checkpoint merged them.
func (x *recentIndex) reset() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.ids = map[uuid.UUID]uint64{}
	x.streams = map[string]*recentStream{}
	x.events = 0
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
