// Package personal protects the personal data of minors and their
// guardians by crypto-shredding: personal fields are sealed in events with
// a key of the person they are about (AES-256-GCM), kept in a key store of
// its own. Destroying the key erases the data from the log, from every copy
// of it and from every read model rebuilt from it, while the events and the
// statistics remain.
package personal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"passerelle/domain"
	"passerelle/internal/fsync"
	"passerelle/internal/idbytes"
)

// Keys stores one key per person.
type Keys interface {
	// Key returns the subject's key, creating it when create is set; ok is
	// false when the key does not exist (never created, or destroyed).
	Key(subject string, create bool) (key []byte, ok bool, err error)
	// Destroy erases the subject's key for good.
	Destroy(subject string) error
}

// DirKeys keeps each key in its own file of a directory: creation is
// fsynced before use, destruction overwrites the file before removing it.
// It also reads, and destroys, the keys a seed packed many to a file
// (packed.go). Every use of a key checks that it is still on disk, so that
// a key another process destroyed is not used again.
type DirKeys struct {
	dir string
	mu  sync.Mutex
	// the keys read: of subjects whose IDs are canonical UUIDs (the
	// command layer's) by their bytes, in a map without pointers that the
	// collector does not scan (a national instance holds 1.4 million);
	// any other subject's by its ID
	uuids map[[16]byte]cachedKey
	cache map[string]cachedKey
	packs [256]*pack
}

// cachedKey is a key read, and where: its pack and the record's offset,
// or (pack -1) a file of its own, whose path derives from the subject.
type cachedKey struct {
	key  [32]byte
	at   int64
	pack int16
}

// OpenDir opens (creating) a key directory.
func OpenDir(dir string) (*DirKeys, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &DirKeys{dir: dir, uuids: map[[16]byte]cachedKey{}, cache: map[string]cachedKey{}}, nil
}

// path is the file of a subject's key: file names reveal nothing of the
// subject.
func (d *DirKeys) path(sum *[sha256.Size]byte) string {
	return filepath.Join(d.dir, hex.EncodeToString(sum[:])+".key")
}

// Key implements Keys: a new key is written and fsynced before it is used.
func (d *DirKeys) Key(subject string, create bool) ([]byte, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c, ok := d.cached(subject); ok {
		// another process sharing the directory may have destroyed it
		switch still, err := d.onDisk(subject, c); {
		case err != nil:
			return nil, false, err
		case still:
			key := make([]byte, len(c.key))
			copy(key, c.key[:])
			return key, true, nil
		}
		d.forget(subject)
	}
	sum := sha256.Sum256([]byte(subject))
	path := d.path(&sum)
	if k, ok, err := d.read(subject, &sum, path); ok || err != nil || !create {
		return k, ok, err
	}
	return d.create(subject, path)
}

// cached is the key of subject read before.
func (d *DirKeys) cached(subject string) (cachedKey, bool) {
	if u, ok := idbytes.Parse(subject); ok {
		c, ok := d.uuids[u]
		return c, ok
	}
	c, ok := d.cache[subject]
	return c, ok
}

// keep remembers the key of subject, in a pack's record at an offset or
// (p nil) in a file of its own.
func (d *DirKeys) keep(subject string, key []byte, p *pack, at int64) {
	c := cachedKey{at: at, pack: -1}
	copy(c.key[:], key)
	if p != nil {
		c.pack = int16(p.bucket)
	}
	if u, ok := idbytes.Parse(subject); ok {
		d.uuids[u] = c
	} else {
		d.cache[subject] = c
	}
}

// forget drops the key of subject read before.
func (d *DirKeys) forget(subject string) {
	if u, ok := idbytes.Parse(subject); ok {
		delete(d.uuids, u)
	} else {
		delete(d.cache, subject)
	}
}

// read reads a subject's key from its file, or else from its pack.
func (d *DirKeys) read(subject string, sum *[sha256.Size]byte, path string) ([]byte, bool, error) {
	k, err := os.ReadFile(path)
	switch {
	case err == nil && len(k) == 32:
		d.keep(subject, k, nil, 0)
		return k, true, nil
	case err == nil:
		return nil, false, fmt.Errorf("key file %s is damaged", path)
	case !errors.Is(err, os.ErrNotExist):
		return nil, false, err
	}
	k, p, at, err := d.packedKey(sum)
	if p != nil {
		d.keep(subject, k, p, at)
	}
	return k, p != nil, err
}

// create writes a new key file.
func (d *DirKeys) create(subject, path string) ([]byte, bool, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, false, err
	}
	switch err := writeDurably(d.dir, path, k); {
	case errors.Is(err, os.ErrExist):
		// another process sharing the directory created it first: use its
		if k, err = os.ReadFile(path); err != nil || len(k) != 32 {
			return nil, false, errors.Join(fmt.Errorf("key file %s: unreadable after a concurrent creation", path), err)
		}
	case err != nil:
		return nil, false, err
	}
	d.keep(subject, k, nil, 0)
	return k, true, nil
}

// onDisk tells whether a cached key is still on disk.
func (d *DirKeys) onDisk(subject string, c cachedKey) (bool, error) {
	if c.pack >= 0 {
		return d.packs[c.pack].holds(c.at, c.key[:])
	}
	// the path is not kept: a hash costs little beside the system call
	sum := sha256.Sum256([]byte(subject))
	_, err := os.Stat(d.path(&sum))
	return err == nil, nil
}

// Destroy implements Keys: the key file is overwritten, synced, then
// removed; a packed key is overwritten in place and synced.
func (d *DirKeys) Destroy(subject string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.forget(subject)
	sum := sha256.Sum256([]byte(subject))
	return errors.Join(d.destroyPacked(&sum), destroyFile(d.dir, d.path(&sum)))
}

// destroyFile overwrites a key file, syncs it, then removes it.
func destroyFile(dir, path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	// overwrite before unlinking, so the key's blocks do not linger
	_, werr := f.WriteAt(make([]byte, 64), 0)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return err
	}
	if err := os.Remove(path); err != nil {
		return err
	}
	return fsync.Dir(dir)
}

// writeDurably writes a new file whole or not at all: a synced temporary
// file linked into place, then the directory synced. The link fails with
// os.ErrExist when the file exists: a key is never replaced.
func writeDurably(dir, path string, b []byte) error {
	tmp, err := os.CreateTemp(dir, ".key-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	err = errors.Join(err, tmp.Close())
	if err == nil {
		err = os.Link(tmp.Name(), path)
	}
	if rerr := os.Remove(tmp.Name()); err == nil {
		err = rerr
	}
	if err != nil {
		return err
	}
	return fsync.Dir(dir)
}

// Cipher seals and opens the personal fields of events. It keeps the
// AES-GCM instances of the subjects it used last: a pupil's aggregate or
// read-model document opens several of their events at once, and setting
// one up for each was a third of opening one. Each use still asks the key
// store for the key, which tells when it is gone.
type Cipher struct {
	keys  Keys
	mu    sync.Mutex
	aeads map[string]keyedAEAD // by subject, at most keptAEADs
}

// keyedAEAD is an AES-GCM instance and the key it was set up with.
type keyedAEAD struct {
	key  [32]byte
	aead cipher.AEAD
}

// keptAEADs bounds the instances a Cipher keeps (about 1 KB each).
const keptAEADs = 4096

// NewCipher builds a cipher over a key store.
func NewCipher(keys Keys) *Cipher { return &Cipher{keys: keys, aeads: map[string]keyedAEAD{}} }

// Forget destroys a pupil's key: their personal data can no longer be read.
func (c *Cipher) Forget(pupilID string) error {
	c.drop(pupilID)
	return c.keys.Destroy(pupilID)
}

// aead is the AES-GCM instance of subject's key.
func (c *Cipher) aead(subject string, key []byte) (cipher.AEAD, error) {
	c.mu.Lock()
	k, ok := c.aeads[subject]
	c.mu.Unlock()
	if ok && string(k.key[:]) == string(key) {
		return k.aead, nil
	}
	aead, err := gcm(key)
	if err != nil {
		return nil, err
	}
	k = keyedAEAD{aead: aead}
	copy(k.key[:], key)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.aeads) >= keptAEADs {
		for s := range c.aeads { // any one: map order is random
			delete(c.aeads, s)
			break
		}
	}
	c.aeads[subject] = k
	return aead, nil
}

// drop forgets the AES-GCM instance of subject's key.
func (c *Cipher) drop(subject string) {
	c.mu.Lock()
	delete(c.aeads, subject)
	c.mu.Unlock()
}

// Seal returns the event to store: a copy whose personal fields are moved
// into a Sealed blob. Events without personal data are returned as they are.
func (c *Cipher) Seal(e domain.Event) (domain.Event, error) { return c.sealEvent(e, true) }

// SealIfKept seals e as Seal does, but only with a key its subject has
// already: false, and nothing sealed, when it has none (forgotten), where
// Seal would make one. It seals again what a process keeps of events it
// read (a snapshot), which must not outlive a forget.
func (c *Cipher) SealIfKept(e domain.Event) (domain.Event, bool, error) {
	out, err := c.sealEvent(e, false)
	if errors.Is(err, errNoKey) {
		return nil, false, nil
	}
	return out, err == nil, err
}

// errNoKey: the subject has no key, and none was to be made.
var errNoKey = errors.New("no key")

func (c *Cipher) sealEvent(e domain.Event, create bool) (domain.Event, error) {
	seal := func(subject string, v any) (*domain.Sealed, error) { return c.seal(subject, v, create) }
	switch ev := e.(type) {
	case *domain.PupilRegistered:
		p := domain.PupilPersonal{FirstName: ev.FirstName, LastName: ev.LastName, BirthDate: ev.BirthDate, Guardians: ev.Guardians}
		s, err := seal(ev.PupilID, p)
		if err != nil {
			return nil, err
		}
		out := *ev
		out.Sealed, out.FirstName, out.LastName, out.BirthDate, out.Guardians = s, "", "", "", nil
		return &out, nil
	case *domain.ApplicationSubmitted:
		s, err := seal(ev.PupilID, ev.Motivation)
		if err != nil {
			return nil, err
		}
		out := *ev
		out.Sealed, out.Motivation = s, ""
		return &out, nil
	case *domain.ConventionDrafted:
		p := domain.ConventionPersonal{PupilFirstName: ev.PupilFirstName, PupilLastName: ev.PupilLastName, Guardians: ev.Guardians}
		s, err := seal(ev.PupilID, p)
		if err != nil {
			return nil, err
		}
		out := *ev
		out.Sealed, out.PupilFirstName, out.PupilLastName, out.Guardians = s, "", "", nil
		return &out, nil
	case *domain.ApplicationWithdrawn:
		if ev.Reason == "" {
			return e, nil
		}
		if ev.PupilID == "" {
			return nil, errors.New("a withdrawal's reason names no pupil to seal it for")
		}
		s, err := seal(ev.PupilID, ev.Reason)
		if err != nil {
			return nil, err
		}
		out := *ev
		out.Sealed, out.Reason = s, ""
		return &out, nil
	case *domain.ConventionSignatureAdded:
		if !ev.Role.Personal() {
			return e, nil // the employer's and the school head's signers sign as professionals
		}
		if ev.PupilID == "" {
			return nil, fmt.Errorf("the %s's signature names no pupil to seal it for", ev.Role)
		}
		s, err := seal(ev.PupilID, ev.SignerName)
		if err != nil {
			return nil, err
		}
		out := *ev
		out.Sealed, out.SignerName = s, ""
		return &out, nil
	}
	return e, nil
}

// Open restores an event's personal fields, or marks them erased when the
// person's key was destroyed.
func (c *Cipher) Open(e domain.Event) error {
	switch ev := e.(type) {
	case *domain.PupilRegistered:
		if ev.Sealed == nil {
			return nil
		}
		var p domain.PupilPersonal
		erased, err := c.open(ev.Sealed, &p)
		if err != nil {
			return err
		}
		ev.FirstName, ev.LastName, ev.BirthDate, ev.Guardians, ev.Erased = p.FirstName, p.LastName, p.BirthDate, p.Guardians, erased
		ev.Sealed = nil
	case *domain.ApplicationSubmitted:
		return c.openText(&ev.Sealed, &ev.Motivation, &ev.Erased)
	case *domain.ConventionDrafted:
		if ev.Sealed == nil {
			return nil
		}
		var p domain.ConventionPersonal
		erased, err := c.open(ev.Sealed, &p)
		if err != nil {
			return err
		}
		ev.PupilFirstName, ev.PupilLastName, ev.Guardians, ev.Erased = p.PupilFirstName, p.PupilLastName, p.Guardians, erased
		ev.Sealed = nil
	case *domain.ApplicationWithdrawn:
		return c.openText(&ev.Sealed, &ev.Reason, &ev.Erased)
	case *domain.ConventionSignatureAdded:
		return c.openText(&ev.Sealed, &ev.SignerName, &ev.Erased)
	}
	return nil
}

// openText restores one sealed text field of an event.
func (c *Cipher) openText(sealed **domain.Sealed, text *string, erased *bool) error {
	if *sealed == nil {
		return nil
	}
	gone, err := c.open(*sealed, text)
	if err != nil {
		return err
	}
	*erased, *sealed = gone, nil
	return nil
}

func (c *Cipher) seal(subject string, v any, create bool) (*domain.Sealed, error) {
	key, ok, err := c.keys.Key(subject, create)
	if err != nil {
		return nil, err
	}
	if !ok {
		c.drop(subject)
		return nil, errNoKey
	}
	aead, err := c.aead(subject, key)
	if err != nil {
		return nil, err
	}
	plain, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return &domain.Sealed{Subject: subject, Nonce: nonce, Ciphertext: aead.Seal(nil, nonce, plain, []byte(subject))}, nil
}

// open decrypts into v; erased is true when the key no longer exists.
func (c *Cipher) open(s *domain.Sealed, v any) (erased bool, err error) {
	key, ok, err := c.keys.Key(s.Subject, false)
	if err != nil {
		return false, err
	}
	if !ok {
		c.drop(s.Subject)
		return true, nil
	}
	aead, err := c.aead(s.Subject, key)
	if err != nil {
		return false, err
	}
	if len(s.Nonce) != aead.NonceSize() {
		return false, errors.New("sealed data: bad nonce")
	}
	plain, err := aead.Open(nil, s.Nonce, s.Ciphertext, []byte(s.Subject))
	if err != nil {
		return false, fmt.Errorf("sealed data of %s: %w", s.Subject, err)
	}
	return false, domain.Unmarshal(plain, v)
}

func gcm(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
