package seed

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"

	"passerelle/eventstore/embedded"
	"passerelle/eventstore/personal"
)

// BulkKeys is the personal-data key store of a seeding run: the same files
// as personal.DirKeys (one 32-byte key per pupil, named by the SHA-256 of
// the pupil id), written without a sync each and made durable together by
// Sync. DirKeys syncs every new key and its directory before use, two
// fsyncs per pupil under one lock, which would bound a national seed to a
// few thousand pupils a second. A seed interrupted before Sync is started
// again on an empty data directory.
type BulkKeys struct {
	dir      string
	existing *personal.DirKeys
	mu       sync.RWMutex
	cache    map[string][]byte
}

// OpenBulkKeys opens (creating) the key directory of a data directory.
func OpenBulkKeys(dir string) (*BulkKeys, error) {
	d, err := personal.OpenDir(dir)
	if err != nil {
		return nil, err
	}
	return &BulkKeys{dir: dir, existing: d, cache: map[string][]byte{}}, nil
}

// Key implements personal.Keys. A seed creates each pupil's key once, in
// the pupil's registration, so creations need no lock of their own.
func (b *BulkKeys) Key(subject string, create bool) ([]byte, bool, error) {
	b.mu.RLock()
	k, ok := b.cache[subject]
	b.mu.RUnlock()
	if ok {
		return k, true, nil
	}
	if !create {
		return b.existing.Key(subject, false) // written before this run
	}
	k = make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, false, err
	}
	sum := sha256.Sum256([]byte(subject))
	// written in place, without the temporary file and rename of DirKeys:
	// a key cut short by a crash belongs to a seed to start again anyway
	path := filepath.Join(b.dir, hex.EncodeToString(sum[:])+".key")
	if err := os.WriteFile(path, k, 0o600); err != nil {
		return nil, false, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if prev, ok := b.cache[subject]; ok {
		return prev, true, os.WriteFile(path, prev, 0o600) // a concurrent creation won: keep its key
	}
	b.cache[subject] = k
	return k, true, nil
}

// Destroy implements personal.Keys.
func (b *BulkKeys) Destroy(subject string) error {
	b.mu.Lock()
	delete(b.cache, subject)
	b.mu.Unlock()
	return b.existing.Destroy(subject)
}

// Sync makes every key written so far durable: one syncfs of the file
// system holding them.
func (b *BulkKeys) Sync() error {
	f, err := os.Open(b.dir)
	if err != nil {
		return err
	}
	return errors.Join(unix.Syncfs(int(f.Fd())), f.Close())
}

// StoreOptions open the embedded store for a seed: its many commands in
// flight may all share one commit.
var StoreOptions = []embedded.Option{embedded.WithMaxBatchSize(4096)}
