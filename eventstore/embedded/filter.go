package embedded

import (
	"bytes"
	"hash/maphash"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// keyFilter answers, for most keys a bucket does not hold, that it does
// not hold them, without a walk down its b-tree. The store keeps two:
//   - the event IDs of the ids bucket: an append looks each of its events'
//     IDs up to tell a retry from a new event, and with 64 writers that
//     lookup was a seventh of the committer's time;
//   - the stream names of the streams bucket: a command's first read of a
//     stream it creates (a pupil registered, an application submitted)
//     otherwise opens a transaction to find nothing, and the committer
//     then looks the name up again.
//
// It is a split-block Bloom filter (the layout Apache Parquet specifies):
// a key sets one bit in each of the eight 32-bit words of one 256-bit
// block, so a lookup reads one cache line. A filter never forgets, and a
// key it was not given may still look present (0.4 % of them across the
// levels of 600,000 keys): such a key is looked up as before. It must never
// miss one the bucket holds: it holds every key in the bucket when the
// store opened (read by a scan in the background; until it ends, every
// lookup goes to the bucket) and every key the committer added since,
// before the commit that adds it: neither bucket loses a key.
//
// Its levels grow as keys come: each new one holds twice what the others
// hold together, and a lookup reads one block in each. The committer adds
// the levels; the scan writes only into the first, with atomic operations,
// as the committer does, and any goroutine may look keys up.
type keyFilter struct {
	seed   maphash.Seed
	levels atomic.Pointer[[]*filterLevel] // replaced, never changed, when a level is added
	room   int                            // keys the committer may still add before a new level begins
	ready  atomic.Bool                    // the scan ended: the filter holds every key of the bucket
}

// filterLevel is one Bloom filter of blocks of eight words.
type filterLevel struct {
	words []uint32
}

// filterBitsPerKey is the filter's size per key of its capacity: 8 made
// 9.7 % of absent keys look present across the levels of 600,000 keys, 12
// made 1.6 %, 16 0.4 % (2 bytes a key: 47 MB for the IDs of a national
// store).
const filterBitsPerKey = 16

// minFilterKeys is the capacity of the first level of an empty store.
const minFilterKeys = 1 << 16

// salts are the multipliers that pick one bit in each word of a block.
var salts = [8]uint32{0x47b6137b, 0x44974d91, 0x8824ad5b, 0xa2b7289d, 0x705495c7, 0x2df1424b, 0x9efc4947, 0x5c6bfb31}

// newKeyFilter sizes the first level for twice the keys the bucket holds
// (about: more only makes more absent keys look present).
func newKeyFilter(stored uint64) *keyFilter {
	capacity := max(minFilterKeys, 2*int(stored))
	f := &keyFilter{seed: maphash.MakeSeed(), room: capacity - int(stored)}
	f.levels.Store(&[]*filterLevel{newFilterLevel(capacity)})
	return f
}

func newFilterLevel(capacity int) *filterLevel {
	blocks := max(1, capacity*filterBitsPerKey/256)
	return &filterLevel{words: make([]uint32, 8*blocks)}
}

// hash is the key's hash under the filter's seed; a nil filter, which may
// hold anything, hashes every key to 0.
func (f *keyFilter) hash(key []byte) uint64 {
	if f == nil {
		return 0
	}
	return maphash.Bytes(f.seed, key)
}

// hashString is hash of the key's bytes.
func (f *keyFilter) hashString(key string) uint64 {
	if f == nil {
		return 0
	}
	return maphash.String(f.seed, key)
}

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

// add records a key of hash h the committer added; for the committer only.
func (f *keyFilter) add(h uint64) {
	levels := *f.levels.Load()
	if f.room <= 0 {
		total := 0
		for _, l := range levels {
			total += len(l.words) * 32 / filterBitsPerKey
		}
		levels = append(levels[:len(levels):len(levels)], newFilterLevel(2*total))
		f.levels.Store(&levels)
		f.room = 2 * total
	}
	f.room--
	levels[len(levels)-1].add(h)
}

// mayHold reports whether the bucket may hold the key of hash h: false
// only once the scan ended and no level holds it. A nil filter may hold
// anything.
func (f *keyFilter) mayHold(h uint64) bool {
	if f == nil || !f.ready.Load() {
		return true
	}
	for _, l := range *f.levels.Load() {
		if l.has(h) {
			return true
		}
	}
	return false
}

// scanChunk is how many keys of a bucket one read transaction of the scan
// reads: a long transaction would hold up a commit that must grow the
// file's mapping.
const scanChunk = 1 << 16

// scan adds every key of the bucket to the filter's first level, a chunk
// at a time, then opens the filter to lookups; it gives up when the store
// closes or a read fails (lookups then go to the bucket, as before).
func (s *Store) scan(f *keyFilter, bucket []byte, chunk int) {
	first := (*f.levels.Load())[0]
	var after []byte // the last key read
	for {
		if s.closed() {
			return
		}
		n := 0
		err := s.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucket).Cursor()
			k, _ := c.Seek(after) // the first key when after is nil
			if after != nil && bytes.Equal(k, after) {
				k, _ = c.Next()
			}
			for ; k != nil && n < chunk; k, _ = c.Next() {
				first.add(f.hash(k))
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
