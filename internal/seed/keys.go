package seed

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
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
	dirFD    int // the directory, opened once: each key is created relative to it
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
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return &BulkKeys{dir: dir, dirFD: fd, existing: d, cache: map[string][]byte{}}, nil
}

// Close releases the key directory; Sync first makes the keys durable.
func (b *BulkKeys) Close() error {
	return unix.Close(b.dirFD)
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
	name := keyFile(subject)
	// written in place, without the temporary file and rename of DirKeys:
	// a key cut short by a crash belongs to a seed to start again anyway
	if err := b.write(name, k); err != nil {
		return nil, false, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if prev, ok := b.cache[subject]; ok {
		return prev, true, b.write(name, prev) // a concurrent creation won: keep its key
	}
	b.cache[subject] = k
	return k, true, nil
}

// keyFile is the name of a subject's key file, as personal.DirKeys names
// it: the SHA-256 of the subject in hexadecimal, then ".key".
func keyFile(subject string) string {
	sum := sha256.Sum256([]byte(subject))
	var name [2*sha256.Size + len(".key")]byte
	hex.Encode(name[:], sum[:])
	copy(name[2*sha256.Size:], ".key")
	return string(name[:])
}

// write writes a key file of the directory with three system calls (the
// os package would add a poller registration and a finalizer per file).
func (b *BulkKeys) write(name string, k []byte) error {
	fd, err := unix.Openat(b.dirFD, name, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return &os.PathError{Op: "open", Path: filepath.Join(b.dir, name), Err: err}
	}
	n, err := unix.Write(fd, k)
	if err == nil && n < len(k) {
		err = io.ErrShortWrite
	}
	return errors.Join(err, unix.Close(fd))
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
	if err := unix.Syncfs(b.dirFD); err != nil {
		return &os.PathError{Op: "syncfs", Path: b.dir, Err: err}
	}
	return nil
}

// StoreOptions open the embedded store for a seed: its many commands in
// flight may all share one commit.
var StoreOptions = []embedded.Option{embedded.WithMaxBatchSize(4096)}
