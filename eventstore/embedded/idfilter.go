package embedded

import (
	"bytes"
	"hash/maphash"
	"sync/atomic"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"
)

// idFilter answers, for most new event IDs, that no event holds them,
// without the lookup in the ids bucket that an append otherwise makes for
// each of its events: with 64 writers that lookup, a random walk down a
// b-tree, was a seventh of the committer's time.
//
// It is a split-block Bloom filter (the layout Apache Parquet specifies):
// an ID sets one bit in each of the eight 32-bit words of one 256-bit
// block, so a lookup reads one cache line. A filter never forgets, and an
// ID it was not given may still look present (0.4 % of them across the
// levels of 600,000 IDs): such an ID is looked up as before. It must never
// miss one the bucket holds: it holds every ID in the bucket when the
// store opened (read by a scan in the background; until it ends, every
// lookup goes to the bucket) and every ID the committer indexed since,
// which is where the bucket's later entries come from.
//
// Its levels grow as IDs come: each new one holds twice what the others
// hold together, and a lookup reads one block in each. The committer owns
// levels; the scan writes only into the first, with atomic operations, as
// the committer does.
type idFilter struct {
	seed   maphash.Seed
	levels []*filterLevel
	ready  atomic.Bool // the scan ended: the filter holds every ID of the bucket
}

// filterLevel is one Bloom filter of blocks of eight words.
type filterLevel struct {
	words []uint32
	room  int // IDs the committer may still add before a new level begins
}

// filterBitsPerID is the filter's size per ID of its capacity: 8 made
// 9.7 % of absent IDs look present across the levels of 600,000 IDs, 12
// made 1.6 %, 16 0.4 % (2 bytes an ID: 47 MB for a national store).
const filterBitsPerID = 16

// minFilterIDs is the capacity of the first level of an empty store.
const minFilterIDs = 1 << 16

// salts are the multipliers that pick one bit in each word of a block.
var salts = [8]uint32{0x47b6137b, 0x44974d91, 0x8824ad5b, 0xa2b7289d, 0x705495c7, 0x2df1424b, 0x9efc4947, 0x5c6bfb31}

// newIDFilter sizes the first level for twice the IDs the store holds.
func newIDFilter(stored uint64) *idFilter {
	capacity := max(minFilterIDs, 2*int(stored))
	return &idFilter{seed: maphash.MakeSeed(), levels: []*filterLevel{newFilterLevel(capacity, capacity-int(stored))}}
}

func newFilterLevel(capacity, room int) *filterLevel {
	blocks := max(1, capacity*filterBitsPerID/256)
	return &filterLevel{words: make([]uint32, 8*blocks), room: room}
}

func (f *idFilter) hash(id uuid.UUID) uint64 { return maphash.Bytes(f.seed, id[:]) }

// block is the block of eight words the high half of h picks; the low half
// picks a bit in each.
func (l *filterLevel) block(h uint64) []uint32 {
	blocks := uint64(len(l.words) / 8)
	i := 8 * ((h >> 32) * blocks >> 32)
	return l.words[i : i+8 : i+8]
}

func (l *filterLevel) add(h uint64) {
	b := l.block(h)
	for i, s := range salts {
		atomic.OrUint32(&b[i], 1<<((uint32(h)*s)>>27))
	}
}

func (l *filterLevel) has(h uint64) bool {
	b := l.block(h)
	for i, s := range salts {
		if atomic.LoadUint32(&b[i])&(1<<((uint32(h)*s)>>27)) == 0 {
			return false
		}
	}
	return true
}

// add records an ID the committer indexed; for the committer only.
func (f *idFilter) add(id uuid.UUID) {
	top := f.levels[len(f.levels)-1]
	if top.room <= 0 {
		total := 0
		for _, l := range f.levels {
			total += len(l.words) * 32 / filterBitsPerID
		}
		top = newFilterLevel(2*total, 2*total)
		f.levels = append(f.levels, top)
	}
	top.room--
	top.add(f.hash(id))
}

// mayHold reports whether the bucket may hold id: false only once the scan
// ended and no level holds it; for the committer only. A nil filter may
// hold anything.
func (f *idFilter) mayHold(id uuid.UUID) bool {
	if f == nil || !f.ready.Load() {
		return true
	}
	h := f.hash(id)
	for _, l := range f.levels {
		if l.has(h) {
			return true
		}
	}
	return false
}

// scanChunk is how many keys of the ids bucket one read transaction of the
// scan reads: a long transaction would hold up a commit that must grow
// the file's mapping.
const scanChunk = 1 << 16

// scanIDs adds every ID of the ids bucket to the filter's first level, a
// chunk at a time, then opens the filter to lookups; it gives up when the
// store closes or a read fails (lookups then go to the bucket, as before).
func (s *Store) scanIDs(f *idFilter, chunk int) {
	first := f.levels[0]
	var after []byte // the last key read
	for {
		if s.closed() {
			return
		}
		n := 0
		err := s.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketIDs).Cursor()
			k, _ := c.Seek(after) // the first key when after is nil
			if after != nil && bytes.Equal(k, after) {
				k, _ = c.Next()
			}
			for ; k != nil && n < chunk; k, _ = c.Next() {
				if id, err := uuid.FromBytes(k); err == nil {
					first.add(f.hash(id))
				}
				after, n = append(after[:0], k...), n+1
			}
			return nil
		})
		if err != nil {
			return
		}
		if n < chunk {
			f.ready.Store(true)
			return
		}
	}
}
