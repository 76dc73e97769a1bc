// Package snapfile writes and reads the snapshot files that let a fold of
// the log (the reconciler's view, the desk's index) start from where it
// stopped instead of the log's first event.
//
// A snapshot is written by hand, streamed to the file: its magic line, its
// version and the ID of the log it was folded from (so that a snapshot of
// another log is never used), then the fold's values (strings as a length
// and their bytes, integers as varints), then the CRC-32 of everything
// before it. It is saved atomically and durably: a temporary file, fsynced,
// renamed over the last one, the directory fsynced.
package snapfile

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"passerelle/eventstore"
)

// ErrDamaged is returned for a file that is not a snapshot of the kind and
// version asked for, or was damaged.
var ErrDamaged = errors.New("not a snapshot of this version, or damaged")

// Kind names a kind of snapshot: its magic line and the version of its
// values this build writes and reads.
type Kind struct {
	Magic   string
	Version uint64
	// MaxString bounds the strings a snapshot may hold, so that a damaged
	// one is refused before it asks for memory.
	MaxString int
}

// LogIdentity is the ID of the log's first event ("" while it is empty).
func LogIdentity(ctx context.Context, store eventstore.Store) (string, error) {
	evs, err := store.ReadAll(ctx, eventstore.Start, 1)
	if err != nil || len(evs) == 0 {
		return "", err
	}
	return evs[0].ID.String(), nil
}

// Save writes a snapshot of kind k, folded from the log whose first event
// is log, to file: body writes its values.
func Save(file string, k Kind, log string, body func(*Encoder)) error {
	// a temporary file of its own: processes sharing a data directory may
	// save at once, the last rename winning
	pattern := filepath.Base(file) + ".*.tmp"
	removeStale(filepath.Join(filepath.Dir(file), pattern))
	f, err := os.CreateTemp(filepath.Dir(file), pattern)
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = Write(f, k, log, body)
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		return errors.Join(err, f.Close(), os.Remove(tmp))
	}
	if err := f.Close(); err != nil {
		return errors.Join(err, os.Remove(tmp))
	}
	if err := os.Rename(tmp, file); err != nil {
		return errors.Join(err, os.Remove(tmp))
	}
	dir, err := os.Open(filepath.Dir(file))
	if err != nil {
		return err
	}
	return errors.Join(dir.Sync(), dir.Close())
}

// staleAfter is how old a temporary file is when no save is writing it
// any more: its process stopped during the save.
const staleAfter = time.Hour

// removeStale removes the temporary files matching pattern left by saves
// that never finished.
func removeStale(pattern string) {
	names, _ := filepath.Glob(pattern)
	for _, name := range names {
		if st, err := os.Stat(name); err == nil && time.Since(st.ModTime()) > staleAfter {
			_ = os.Remove(name)
		}
	}
}

// Write streams a snapshot to w.
func Write(w io.Writer, k Kind, log string, body func(*Encoder)) error {
	sum := crc32.NewIEEE()
	bw := bufio.NewWriterSize(io.MultiWriter(w, sum), 256<<10)
	e := &Encoder{w: bw}
	e.String(k.Magic)
	e.Uint(k.Version)
	e.String(log)
	body(e)
	if err := bw.Flush(); err != nil {
		return err
	}
	_, err := w.Write(binary.LittleEndian.AppendUint32(nil, sum.Sum32()))
	return err
}

// Read reads a snapshot of kind k from file: body reads its values (the
// first error it meets is kept by the Decoder and returned). It answers
// the ID of the log the snapshot was folded from; os.ErrNotExist when
// there is no file.
func Read(file string, k Kind, body func(*Decoder)) (log string, err error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	if st.Size() < 4 {
		return "", ErrDamaged
	}
	size := st.Size() - 4
	d := &Decoder{sum: crc32.NewIEEE(), left: size, max: k.MaxString}
	d.r = bufio.NewReaderSize(io.TeeReader(io.LimitReader(f, size), d.sum), 256<<10)
	if d.String() != k.Magic {
		return "", ErrDamaged
	}
	if version := d.Uint(); d.err == nil && version != k.Version {
		return "", fmt.Errorf("version %d, this build reads %d", version, k.Version)
	}
	log = d.String()
	if d.err == nil {
		body(d)
	}
	if d.err != nil {
		return "", d.err
	}
	var want [4]byte
	if _, err := f.ReadAt(want[:], size); err != nil {
		return "", err
	}
	if _, err := d.r.ReadByte(); err != io.EOF || binary.LittleEndian.Uint32(want[:]) != d.sum.Sum32() {
		return "", ErrDamaged
	}
	return log, nil
}

// Encoder writes a snapshot's values; the bufio.Writer keeps the first
// error, which Write returns.
type Encoder struct {
	w   *bufio.Writer
	tmp [binary.MaxVarintLen64]byte
}

// Uint writes n as a varint.
func (e *Encoder) Uint(n uint64) { _, _ = e.w.Write(binary.AppendUvarint(e.tmp[:0], n)) }

// Int writes n as a varint.
func (e *Encoder) Int(n int64) { _, _ = e.w.Write(binary.AppendVarint(e.tmp[:0], n)) }

// Float writes f's bits.
func (e *Encoder) Float(f float64) { e.Uint(math.Float64bits(f)) }

// String writes s's length and bytes.
func (e *Encoder) String(s string) {
	e.Uint(uint64(len(s)))
	_, _ = e.w.WriteString(s)
}

// Bytes writes b as a String.
func (e *Encoder) Bytes(b []byte) {
	e.Uint(uint64(len(b)))
	_, _ = e.w.Write(b)
}

// Flags writes bs as the bits of one Uint, the first the lowest.
func (e *Encoder) Flags(bs ...bool) {
	var f uint64
	for i, b := range bs {
		if b {
			f |= 1 << i
		}
	}
	e.Uint(f)
}

// Decoder reads a snapshot's values; the first error stops it, and is
// kept: every value read after it is zero.
type Decoder struct {
	r    *bufio.Reader
	sum  hash.Hash32
	left int64 // bytes of the file, an upper bound of those left to read
	max  int
	err  error
}

// Err is the first error met.
func (d *Decoder) Err() error { return d.err }

// Fail marks the snapshot damaged: a value read is out of its bounds.
func (d *Decoder) Fail() { d.keep(ErrDamaged) }

func (d *Decoder) keep(err error) {
	if err != nil && d.err == nil {
		d.err = ErrDamaged
	}
}

// Room is how many entries to make room for when a collection's count
// is n: no more than the bytes left could hold (two each at least), so
// that a damaged count asks for no more memory than the file's size.
func (d *Decoder) Room(n uint64) int {
	return int(min(n, uint64(d.left/2)))
}

// Uint reads a varint.
func (d *Decoder) Uint() uint64 {
	if d.err != nil {
		return 0
	}
	n, err := binary.ReadUvarint(d.r)
	d.keep(err)
	return n
}

// Int reads a varint.
func (d *Decoder) Int() int64 {
	if d.err != nil {
		return 0
	}
	n, err := binary.ReadVarint(d.r)
	d.keep(err)
	return n
}

// Float reads a float's bits.
func (d *Decoder) Float() float64 { return math.Float64frombits(d.Uint()) }

// String reads a string of at most the kind's MaxString bytes.
func (d *Decoder) String() string {
	b := d.peek()
	s := string(b)
	_, _ = d.r.Discard(len(b))
	return s
}

// Bytes reads a String as bytes (nil when empty).
func (d *Decoder) Bytes() []byte {
	b := d.peek()
	var out []byte
	if len(b) > 0 {
		out = append([]byte(nil), b...)
	}
	_, _ = d.r.Discard(len(b))
	return out
}

func (d *Decoder) peek() []byte {
	n := d.Uint()
	if d.err != nil {
		return nil
	}
	if n > uint64(d.max) {
		d.Fail()
		return nil
	}
	b, err := d.r.Peek(int(n))
	if err != nil {
		d.keep(err)
		return nil
	}
	return b
}

// Flags reads the bits a Flags wrote: n of them.
func (d *Decoder) Flags(n int) []bool {
	f := d.Uint()
	out := make([]bool, n)
	for i := range out {
		out[i] = f&(1<<i) != 0
	}
	return out
}
