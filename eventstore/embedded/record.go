package embedded

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"passerelle/eventstore"
)

// recordVersion is the first byte of every record in the log bucket, so the
// format can evolve without rewriting the file.
const recordVersion = 1

var errCorruptRecord = errors.New("corrupt record")

// record is a decoded log value. Its byte slices alias the bolt page and
// are only valid inside the transaction that read them.
type record struct {
	id       uuid.UUID
	stream   []byte
	revision uint64
	typ      []byte
	created  int64 // unix nanoseconds
	data     []byte
	metadata []byte
}

// encodeRecord renders one log value:
//
//	version(1) id(16) uvarint(len stream) stream uvarint(revision)
//	uvarint(len type) type varint(created unix nanos)
//	uvarint(len data) data uvarint(len metadata) metadata
func encodeRecord(id uuid.UUID, stream string, revision uint64, typ string, created int64, data, metadata []byte) []byte {
	n := 1 + 16 + 5*binary.MaxVarintLen64 + len(stream) + len(typ) + len(data) + len(metadata)
	b := make([]byte, 0, n)
	b = append(b, recordVersion)
	b = append(b, id[:]...)
	b = binary.AppendUvarint(b, uint64(len(stream)))
	b = append(b, stream...)
	b = binary.AppendUvarint(b, revision)
	b = binary.AppendUvarint(b, uint64(len(typ)))
	b = append(b, typ...)
	b = binary.AppendVarint(b, created)
	b = binary.AppendUvarint(b, uint64(len(data)))
	b = append(b, data...)
	b = binary.AppendUvarint(b, uint64(len(metadata)))
	b = append(b, metadata...)
	return b
}

func decodeRecord(b []byte) (record, error) {
	var r record
	if len(b) < 17 || b[0] != recordVersion {
		return r, errCorruptRecord
	}
	copy(r.id[:], b[1:17])
	d := decoder{b: b[17:]}
	r.stream = d.bytes()
	r.revision = d.uvarint()
	r.typ = d.bytes()
	r.created = d.varint()
	r.data = d.bytes()
	r.metadata = d.bytes()
	if d.bad || len(d.b) != 0 {
		return r, errCorruptRecord
	}
	return r, nil
}

// event copies the record out of the transaction: its data and metadata
// into one allocation, its type into none once seen.
// Reading the log for a rebuild, these copies were a fifth of the bytes
// it allocated.
func (r record) event(pos uint64) eventstore.RecordedEvent {
	e := r.view(pos)
	if n := len(e.Data) + len(e.Metadata); n > 0 {
		buf := make([]byte, n)
		copy(buf, e.Data)
		copy(buf[len(e.Data):], e.Metadata)
		if e.Data != nil {
			e.Data = buf[:len(e.Data):len(e.Data)]
		}
		if e.Metadata != nil {
			e.Metadata = buf[len(e.Data):]
		}
	}
	return e
}

// view is the record as an event whose Data and Metadata are r's own
// bytes, without room to grow (decoder.bytes): see Store.ViewAll.
func (r record) view(pos uint64) eventstore.RecordedEvent {
	e := eventstore.RecordedEvent{
		ID:       r.id,
		Stream:   string(r.stream),
		Revision: r.revision,
		Position: eventstore.Position(pos),
		Type:     eventTypes.intern(r.typ),
		Created:  time.Unix(0, r.created).UTC(),
	}
	if len(r.data) > 0 {
		e.Data = r.data
	}
	if len(r.metadata) > 0 {
		e.Metadata = r.metadata
	}
	return e
}

// eventTypes holds one copy of each event type read: a log has a few
// dozen, each read millions of times.
var eventTypes interned

// interned is a set of strings, read without a lock: a new one copies the
// map. It stops growing at internedMax strings: past them, each is
// copied.
type interned struct {
	mu sync.Mutex
	m  atomic.Pointer[map[string]string]
}

const internedMax = 1024

func (t *interned) intern(b []byte) string {
	old := t.m.Load()
	if old != nil {
		if s, ok := (*old)[string(b)]; ok {
			return s
		}
	}
	s := string(b)
	t.mu.Lock()
	defer t.mu.Unlock()
	if old = t.m.Load(); old != nil && len(*old) >= internedMax {
		return s
	}
	m := map[string]string{s: s}
	if old != nil {
		maps.Copy(m, *old)
	}
	t.m.Store(&m)
	return s
}

type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) uvarint() uint64 { return decodeVarint(d, binary.Uvarint) }

func (d *decoder) varint() int64 { return decodeVarint(d, binary.Varint) }

// decodeVarint consumes one varint read by read, marking the decoder bad
// when there is none.
func decodeVarint[T int64 | uint64](d *decoder, read func([]byte) (T, int)) T {
	v, n := read(d.b)
	if n <= 0 {
		d.bad, d.b = true, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.bad, d.b = true, nil
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// u64 renders a position or revision as a key that sorts numerically.
func u64(v uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), v)
}

func getU64(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: %d-byte integer", errCorruptRecord, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// revKey is the key of a stream revision in the revs bucket. The fixed
// 8-byte suffix keeps keys of distinct streams distinct even when a name
// contains 0x00: only a stream of the same length can share the prefix.
func revKey(stream string, rev uint64) []byte {
	return appendRevKey(make([]byte, 0, len(stream)+9), stream, rev)
}

// appendRevKey appends revKey(stream, rev) to k.
func appendRevKey[S string | []byte](k []byte, stream S, rev uint64) []byte {
	k = append(k, stream...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, rev)
}
