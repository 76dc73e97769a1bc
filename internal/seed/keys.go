package seed

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"passerelle/eventstore/embedded"
	"passerelle/eventstore/personal"
)

// BulkKeys is the personal-data key store of a seeding run: one 32-byte key
// per pupil, as personal.DirKeys keeps them, but packed many to a file
// (personal.Packer) rather than one file each, written without a sync and
// made durable together by Sync. DirKeys syncs every new key and its
// directory before use, two fsyncs per pupil under one lock, which would
// bound a national seed to a few thousand pupils a second; and a file per
// key costs the file system an inode, a directory entry and a block for 32
// bytes, most of a seed's system time with a million and a half pupils. A
// seed interrupted before Sync is started again on an empty data directory.
type BulkKeys struct {
	dir      string
	dirFD    int // the directory, opened once, for Sync
	existing *personal.DirKeys
	packer   *personal.Packer
	// reuse is set when the directory held something before this run: a
	// subject's key already there is used rather than a new one
	reuse  bool
	shards [64]keyShard
}

// keyShard holds the keys of this run of a share of the subjects, by the
// first 128 bits of the SHA-256 of the subject: a map without pointers,
// which the garbage collector need not scan (a national seed holds a key
// for each of a million and a half pupils).
type keyShard struct {
	mu   sync.RWMutex
	keys map[subjectKey][32]byte
}

type subjectKey [16]byte

func keyOf(subject string) subjectKey {
	s := sha256.Sum256([]byte(subject))
	return subjectKey(s[:16])
}

// OpenBulkKeys opens (creating) the key directory of a data directory.
func OpenBulkKeys(dir string) (*BulkKeys, error) {
	d, err := personal.OpenDir(dir)
	if err != nil {
		return nil, err
	}
	reuse, err := holdsAnything(dir)
	if err != nil {
		return nil, err
	}
	packer, err := personal.NewPacker(dir)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	b := &BulkKeys{dir: dir, dirFD: fd, existing: d, packer: packer, reuse: reuse}
	for i := range b.shards {
		b.shards[i].keys = map[subjectKey][32]byte{}
	}
	return b, nil
}

func holdsAnything(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	_, err = f.Readdirnames(1)
	cerr := f.Close()
	if errors.Is(err, io.EOF) {
		return false, cerr
	}
	return err == nil, errors.Join(err, cerr)
}

// Close releases the key directory; Sync first makes the keys durable.
func (b *BulkKeys) Close() error {
	return errors.Join(b.packer.Close(), unix.Close(b.dirFD))
}

func (b *BulkKeys) shard(k subjectKey) *keyShard {
	return &b.shards[int(k[0])%len(b.shards)]
}

// Key implements personal.Keys. A subject's key is written once, under its
// shard's lock: concurrent creations for one subject agree on it.
func (b *BulkKeys) Key(subject string, create bool) ([]byte, bool, error) {
	sk := keyOf(subject)
	s := b.shard(sk)
	s.mu.RLock()
	k, ok := s.keys[sk]
	s.mu.RUnlock()
	if ok {
		return k[:], true, nil
	}
	if !create {
		return b.existing.Key(subject, false) // written before this run
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.keys[sk]; ok {
		return k[:], true, nil // a concurrent creation won
	}
	if b.reuse {
		switch old, ok, err := b.existing.Key(subject, false); {
		case err != nil:
			return nil, false, err
		case ok && len(old) == len(k):
			s.keys[sk] = [32]byte(old)
			return old, true, nil
		case ok:
			return old, true, nil // not a key this store writes: used, not kept
		}
	}
	if _, err := rand.Read(k[:]); err != nil {
		return nil, false, err
	}
	if err := b.packer.Add(subject, k[:]); err != nil {
		return nil, false, err
	}
	s.keys[sk] = k
	return k[:], true, nil
}

// Destroy implements personal.Keys.
func (b *BulkKeys) Destroy(subject string) error {
	sk := keyOf(subject)
	s := b.shard(sk)
	s.mu.Lock()
	delete(s.keys, sk)
	s.mu.Unlock()
	return b.existing.Destroy(subject)
}

// Sync makes every key written so far durable: each packed file, then
// the directories that name them. A sync of the whole file system would
// also write what the event store has not synced, among it the last half
// minute or so of its log (the kernel writes older pages back on its
// own), which the store's Close deletes once it has checkpointed.
func (b *BulkKeys) Sync() error {
	if err := b.packer.Sync(); err != nil {
		return err
	}
	if err := unix.Fsync(b.dirFD); err != nil {
		return &os.PathError{Op: "fsync", Path: b.dir, Err: err}
	}
	return nil
}

// StoreOptions open the embedded store for a seed: its many commands in
// flight may all share one commit, and a checkpoint comes every GiB of
// log. Index keys are random, so each merge of the entries since the last
// checkpoint into events.db rewrites about a page per entry once the file
// outgrows them: the fewer merges, the fewer pages. Events a national seed
// wrote in its first 3 minutes, all else equal: 1.46 million at 4 MiB
// (then the default), 1.74 million at 64 MiB, 1.90 million at 256 MiB. Its
// commands took 11m20s and 11m25s at 256 MiB, 10m11s, 10m06s and 11m06s
// at 1 GiB (the machine's speed varies by a tenth from run to run). The
// entries of up to two GiB of log wait in memory meanwhile. Appends are
// acknowledged without a sync of the log: an interrupted seed is started
// again anyway. Its commands took 9m52s against 10m13s with a sync per
// group, one run each in turn (6 minutes in: 7.72 million events against
// 7.39), and its 0.3 scale 2m07s against 2m14s. A merge's transactions
// between the groups take 16,384 entries rather than 128: nothing waits
// on a single append, and each transaction's commit has its fixed cost
// (bbolt counts the pages the checkpoint holds back at every commit) and
// rewrites the pages its entries land on. The national season at 0.3 took
// 4.8 % less time with 4,096 (the median of four pairs in turn), and
// 16,384 as long again with a peak resident size 340 MiB lower.
var StoreOptions = []embedded.Option{embedded.WithMaxBatchSize(4096), embedded.WithCheckpointEvery(1 << 30),
	embedded.WithUnsyncedAppends(), embedded.WithMergeChunk(16_384)}
