package personal

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"

	"passerelle/internal/fsync"
)

// Packed keys: a key directory may also hold, in its subdirectory
// "packed", keys written many to a file, as a seed writes them (Packer):
// creating a million small files costs a file system far more than the
// keys are worth (an inode, a directory entry and a block each).
//
// The key of a subject whose SHA-256 is h is in packed/<h[0] in hex>.keys,
// a header of 64 bytes then records of 64 bytes, in the order written:
//
//	h[0:28] | key (32 bytes) | CRC-32C of the 60 bytes before (little endian)
//
// A record is live when its checksum holds and its key is not all zeros.
// Destroying a key overwrites its record in place, key and checksum first
// then the hash, syncing after each: no copy of it is ever made, and a
// destruction cut short leaves the hash by which it is found again. A
// record never straddles a 512-byte sector. When a subject has a key file
// of its own (the layout DirKeys writes), that file wins.
const (
	packedDir  = "packed"
	recordSize = 64
	recordHash = 28 // bytes of the subject's hash in a record
	headerSize = recordSize
)

// packHeader opens every packed key file (zero-padded to headerSize).
var packHeader = []byte("passerelle personal keys, packed, v1\n")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func packName(bucket byte) string { return fmt.Sprintf("%02x.keys", bucket) }

// encodeRecord writes the record of a key.
func encodeRecord(rec []byte, sum *[sha256.Size]byte, key []byte) {
	copy(rec, sum[:recordHash])
	copy(rec[recordHash:], key)
	binary.LittleEndian.PutUint32(rec[recordSize-4:], crc32.Checksum(rec[:recordSize-4], castagnoli))
}

// liveKey returns the key of a record when it is the live record of the
// subject whose hash is sum.
func liveKey(rec []byte, sum *[sha256.Size]byte) ([]byte, bool) {
	if !bytes.Equal(rec[:recordHash], sum[:recordHash]) || !live(rec) {
		return nil, false
	}
	return bytes.Clone(rec[recordHash : recordHash+32]), true
}

// live tells whether a record holds a key: not overwritten, and whole.
func live(rec []byte) bool {
	return !allZero(rec[recordHash:recordHash+32]) &&
		binary.LittleEndian.Uint32(rec[recordSize-4:]) == crc32.Checksum(rec[:recordSize-4], castagnoli)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// indexPrefix is the part of a hash a pack's index is keyed by (byte 0
// names the file).
func indexPrefix(sum *[sha256.Size]byte) uint64 { return binary.LittleEndian.Uint64(sum[1:9]) }

// ambiguous marks an index prefix two subjects share: their records are
// looked for by a scan of the file.
const ambiguous = ^uint32(0)

// pack is a packed key file as DirKeys reads it: opened once, indexed as
// far as it has been read (a seed may still be appending to it).
type pack struct {
	bucket  byte // its place in DirKeys.packs
	f       *os.File
	indexed int64             // bytes read and indexed
	index   map[uint64]uint32 // the last live record of each prefix, by number
	// mem maps the bytes indexed, read-only and shared: a destruction by
	// any process shows in it at once, so checking that a cached key is
	// still on disk costs no system call (a rebuild checks one for every
	// sealed event it opens). Nil where files are not mapped: they are read.
	mem []byte
}

// openPack returns the pack of a bucket, nil when there is none.
func (d *DirKeys) openPack(bucket byte) (*pack, error) {
	if p := d.packs[bucket]; p != nil {
		return p, nil
	}
	f, err := os.Open(filepath.Join(d.dir, packedDir, packName(bucket)))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // not remembered: a seed may create it later
	}
	if err != nil {
		return nil, err
	}
	p := &pack{bucket: bucket, f: f, index: map[uint64]uint32{}}
	d.packs[bucket] = p
	return p, nil
}

// catchUp indexes the records appended since the last call.
func (p *pack) catchUp() error {
	fi, err := p.f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if size < headerSize || size-p.indexed < recordSize {
		return nil // being created, or nothing new
	}
	if p.indexed == 0 {
		if err := checkHeader(p.f, size); err != nil {
			return err
		}
		p.indexed = headerSize
	}
	buf := make([]byte, (size-p.indexed)/recordSize*recordSize)
	if _, err := p.f.ReadAt(buf, p.indexed); err != nil {
		return err
	}
	first := uint32((p.indexed - headerSize) / recordSize)
	var sum [sha256.Size]byte
	for i := 0; i < len(buf); i += recordSize {
		rec := buf[i : i+recordSize]
		if !live(rec) {
			continue // destroyed, or never written whole
		}
		copy(sum[:], rec[:recordHash])
		n := first + uint32(i/recordSize)
		prefix := indexPrefix(&sum)
		if prev, seen := p.index[prefix]; seen && (prev == ambiguous || !p.sameSubject(buf, first, prev, rec)) {
			n = ambiguous
		}
		p.index[prefix] = n // a later record of the same subject wins
	}
	p.indexed += int64(len(buf))
	// a pack only grows, and a record is overwritten in place, never moved
	if m, err := mapFile(p.f, p.indexed); err == nil {
		unmapFile(p.mem)
		p.mem = m
	}
	return nil
}

// sameSubject tells whether record number n holds the hash of rec.
func (p *pack) sameSubject(buf []byte, first, n uint32, rec []byte) bool {
	other := make([]byte, recordHash)
	if n >= first {
		copy(other, buf[int(n-first)*recordSize:])
	} else if _, err := p.f.ReadAt(other, headerSize+int64(n)*recordSize); err != nil {
		return false
	}
	return bytes.Equal(other, rec[:recordHash])
}

// checkHeader writes a new file's header, or checks an existing one's.
func checkHeader(f *os.File, size int64) error {
	if size < headerSize {
		_, err := f.WriteAt(padHeader(), 0)
		return err
	}
	h := make([]byte, headerSize)
	if _, err := f.ReadAt(h, 0); err != nil {
		return err
	}
	if !bytes.Equal(h, padHeader()) {
		return fmt.Errorf("%s: not a packed key file", f.Name())
	}
	return nil
}

func padHeader() []byte {
	h := make([]byte, headerSize)
	copy(h, packHeader)
	return h
}

// find returns the live key of a subject in the pack, and the offset of
// its record. The file is read again from where it was indexed when the
// subject is not found as indexed (a seed may still be appending).
func (p *pack) find(sum *[sha256.Size]byte) ([]byte, int64, bool, error) {
	if k, at, ok, err := p.lookUp(sum); ok || err != nil {
		return k, at, ok, err
	}
	if err := p.catchUp(); err != nil {
		return nil, 0, false, err
	}
	return p.lookUp(sum)
}

// lookUp finds a subject's live record by the index.
func (p *pack) lookUp(sum *[sha256.Size]byte) ([]byte, int64, bool, error) {
	n, ok := p.index[indexPrefix(sum)]
	if !ok {
		return nil, 0, false, nil
	}
	if n == ambiguous {
		return p.scan(sum)
	}
	at := headerSize + int64(n)*recordSize
	// from the mapping when it holds the record (liveKey copies the key
	// out of it): no system call for each key a rebuild or a start opens
	var rec []byte
	if end := at + recordSize; end <= int64(len(p.mem)) {
		rec = p.mem[at:end]
	} else {
		rec = make([]byte, recordSize)
		if _, err := p.f.ReadAt(rec, at); err != nil {
			return nil, 0, false, err
		}
	}
	k, ok := liveKey(rec, sum)
	return k, at, ok, nil
}

// scan looks for the last live record of a subject through the file.
func (p *pack) scan(sum *[sha256.Size]byte) (key []byte, at int64, ok bool, err error) {
	buf, err := io.ReadAll(io.NewSectionReader(p.f, 0, p.indexed))
	if err != nil {
		return nil, 0, false, err
	}
	for i := headerSize; i+recordSize <= len(buf); i += recordSize {
		if k, live := liveKey(buf[i:i+recordSize], sum); live {
			key, at, ok = k, int64(i), true
		}
	}
	return key, at, ok, nil
}

// holds tells whether the record at an offset still holds a key.
func (p *pack) holds(at int64, key []byte) (bool, error) {
	if end := at + recordHash + 32; end <= int64(len(p.mem)) {
		return bytes.Equal(p.mem[at+recordHash:end], key), nil
	}
	got := make([]byte, 32)
	if _, err := p.f.ReadAt(got, at+recordHash); err != nil {
		return false, err
	}
	return bytes.Equal(got, key), nil
}

// packedKey looks for a subject's key among the packed ones.
func (d *DirKeys) packedKey(sum *[sha256.Size]byte) (key []byte, p *pack, at int64, err error) {
	if p, err = d.openPack(sum[0]); p == nil || err != nil {
		return nil, nil, 0, err
	}
	key, at, ok, err := p.find(sum)
	if !ok || err != nil {
		return nil, nil, 0, err
	}
	return key, p, at, nil
}

// destroyPacked overwrites every record of a subject in its pack: the key
// and checksum, synced, then the hash, synced. A record whose destruction
// was cut short is found again by its hash.
func (d *DirKeys) destroyPacked(sum *[sha256.Size]byte) error {
	f, err := os.OpenFile(filepath.Join(d.dir, packedDir, packName(sum[0])), os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	err = overwriteRecords(f, sum)
	return errors.Join(err, f.Close())
}

func overwriteRecords(f *os.File, sum *[sha256.Size]byte) error {
	buf, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	var found []int64
	for i := headerSize; i+recordSize <= len(buf); i += recordSize {
		if bytes.Equal(buf[i:i+recordHash], sum[:recordHash]) {
			found = append(found, int64(i))
		}
	}
	if len(found) == 0 {
		return nil
	}
	zeros := make([]byte, recordSize)
	for _, part := range [][2]int64{{recordHash, recordSize}, {0, recordHash}} {
		for _, at := range found {
			if _, err := f.WriteAt(zeros[part[0]:part[1]], at+part[0]); err != nil {
				return err
			}
		}
		if err := f.Sync(); err != nil {
			return err
		}
	}
	return nil
}

// Packer appends new keys to the packed files of a key directory (see
// above), for a seed that makes them durable together (Sync) before it
// reports success: an Add is one write, with no sync.
// Each subject is added once; DirKeys reads the keys at once.
type Packer struct {
	dir     string
	buckets [256]packBucket
}

type packBucket struct {
	mu   sync.Mutex
	f    *os.File
	next int64 // where the next record goes
}

// NewPacker prepares to add keys to a key directory.
func NewPacker(dir string) (*Packer, error) {
	if err := os.MkdirAll(filepath.Join(dir, packedDir), 0o700); err != nil {
		return nil, err
	}
	return &Packer{dir: dir}, nil
}

// Add writes a subject's new key.
func (p *Packer) Add(subject string, key []byte) error {
	if len(key) != 32 {
		return fmt.Errorf("a key of %d bytes", len(key))
	}
	sum := sha256.Sum256([]byte(subject))
	var rec [recordSize]byte
	encodeRecord(rec[:], &sum, key)
	b := &p.buckets[sum[0]]
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.f == nil {
		if err := b.open(filepath.Join(p.dir, packedDir, packName(sum[0]))); err != nil {
			return err
		}
	}
	// written under the lock: a reader never sees the file grown by a
	// record not yet written
	if _, err := b.f.WriteAt(rec[:], b.next); err != nil {
		return err
	}
	b.next += recordSize
	return nil
}

// open opens (creating) a bucket's file; records go after the last whole
// one.
func (b *packBucket) open(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err == nil {
		err = checkHeader(f, fi.Size())
	}
	if err != nil {
		return errors.Join(err, f.Close())
	}
	b.f, b.next = f, max(headerSize, (fi.Size()+recordSize-1)/recordSize*recordSize)
	return nil
}

// Sync makes the keys added so far durable: each packed file written,
// then the directory that names them.
func (p *Packer) Sync() error {
	err := p.eachFile(func(b *packBucket) error { return b.f.Sync() })
	return errors.Join(err, fsync.Dir(filepath.Join(p.dir, packedDir)))
}

// Close closes the packed files (Sync first makes them durable).
func (p *Packer) Close() error {
	return p.eachFile(func(b *packBucket) error {
		err := b.f.Close()
		b.f = nil
		return err
	})
}

// eachFile calls fn on each bucket whose file is open, under its lock.
func (p *Packer) eachFile(fn func(*packBucket) error) error {
	var errs []error
	for i := range p.buckets {
		b := &p.buckets[i]
		b.mu.Lock()
		if b.f != nil {
			errs = append(errs, fn(b))
		}
		b.mu.Unlock()
	}
	return errors.Join(errs...)
}
