package embedded

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// WALFileName is the write-ahead log beside FileName. It exists only while
// the store is open or after a crash; Open replays it.
const WALFileName = "events.wal"

// The write-ahead log makes an append durable with one fdatasync of a
// sequential write, where a bbolt commit takes two syncs of scattered
// pages. It holds a checkpoint, then the frames carried over from the
// previous log (version 2 only), then one frame per committed group:
//
//	header  magic(8) pageSize(4) txid(8) inode(8) len(4) meta page(len) crc32c(4)
//	frame   len(4) crc32c(4) payload(len)
//	payload (uvarint position, uvarint len, record)...
//
// The checkpoint is a copy of the bbolt meta page of transaction txid,
// taken after events.db was synced at that transaction. Between
// checkpoints bbolt commits without syncing, and a read transaction opened
// at the checkpoint keeps bbolt from reusing any page the checkpoint's
// tree holds. So whatever a crash (even of the machine) leaves of the
// unsynced commits, writing the copied meta page back restores the
// checkpoint exactly, and replaying the frames restores every group whose
// frame was synced: every acknowledged append.
//
// The carried frames hold the events whose index entries were still in
// memory when the checkpoint was taken (see checkpointAt), some at or
// before the checkpoint's last position: Open indexes them again. A log
// that carries frames has version 2, which builds that do not know it
// refuse, rather than read those events without their index entries.
var walMagic = [8]byte{'P', 'A', 'S', 'S', 'W', 'A', 'L', 1}

const walCarrying = 2 // the version byte of a log that carries frames

// metaTxidOffset is where bbolt keeps the transaction ID in a meta page:
// after the 16-byte page header and magic, version, page size, flags
// (4 bytes each), root bucket (16) freelist and high water (8 each).
const metaTxidOffset = 16 + 16 + 16 + 8 + 8

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// testHookLogged, set by tests, runs after a frame is synced and before
// bbolt commits it.
var testHookLogged func()

var errWALHeader = errors.New("embedded: write-ahead log header is damaged")

// walHeader is a checkpoint: the meta page of transaction txid of the
// database file with inode inode.
type walHeader struct {
	pageSize int
	txid     uint64
	inode    uint64
	meta     []byte
	carries  bool // frames carried over follow (version 2)
}

// belongsTo refuses a log left beside another database file (a backup
// put in place after a crash): its meta page would corrupt that file. A
// log and its file are recovered where they were written, before being
// copied anywhere.
func (h walHeader) belongsTo(path string) error {
	ino, err := inode(path)
	if err != nil {
		return err
	}
	if ino != h.inode {
		return fmt.Errorf("embedded: %s was written for another %s (inode %d, not %d): recover the store where it crashed, or move the log away if %s was replaced on purpose", WALFileName, FileName, h.inode, ino, FileName)
	}
	return nil
}

func inode(path string) (uint64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, fmt.Errorf("embedded: no inode for %s", path)
	}
	return st.Ino, nil
}

func (h walHeader) encode() []byte {
	b := append([]byte(nil), walMagic[:]...)
	if h.carries {
		b[len(walMagic)-1] = walCarrying
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(h.pageSize))
	b = binary.LittleEndian.AppendUint64(b, h.txid)
	b = binary.LittleEndian.AppendUint64(b, h.inode)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(h.meta)))
	b = append(b, h.meta...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
}

// walEntry is one event of a frame: its position and log record.
type walEntry struct {
	pos    uint64
	record []byte
}

// appendEntry adds an entry to a frame's payload.
func appendEntry(payload []byte, pos uint64, record []byte) []byte {
	payload = binary.AppendUvarint(payload, pos)
	payload = binary.AppendUvarint(payload, uint64(len(record)))
	return append(payload, record...)
}

// wal is the open log, written by the committer only.
type wal struct {
	f     *os.File
	size  int64
	start int64  // the size of the checkpoint and the frames carried over
	room  int64  // the file's length: zeros past size (see zeroFill)
	buf   []byte // the last frame written, its memory reused by the next
}

// A log's file is filled with zeros ahead of its frames, so that the sync
// of a frame written over them flushes the frame alone: one that grows the
// file must also write its new length and blocks, a second write per
// sync. Syncing 2,048-byte writes on this project's machines, 5,700 to
// 6,500 a second landed in place against 3,900 to 4,200 growing the file
// (and 5,000 to 5,200 into space given by fallocate, whose blocks are
// marked written at each sync). A frame is never empty, so a length of
// zero ends the log.
//
// A log made whole (createWAL: at Open, or by a checkpoint that could not
// start its next log ahead) has room for a checkpoint interval and a
// quarter (walRoom), synced with it. A log is otherwise extended
// walGrowBytes at a time as frames reach its end: the next log while the
// merge before its checkpoint fills it (no sync waits for it then), the
// current one past its room, whose zeros the next sync writes too. Small
// steps keep that sync short: filling a whole interval at the start of a
// merge would put megabytes of writes ahead of the appends' syncs. With
// unsynced appends no zeros go ahead of frames (but 64 KiB in a log made
// whole): a national seed's next logs spent half a percent of its
// processor time writing them.
const walGrowBytes = 256 << 10

// walZeros is what zeroFill writes, never written to: a fresh buffer at
// each growth cost BenchmarkAppend 2 % (1 writer) to 6 % (64 writers) of
// the bytes it allocates per append.
var walZeros [walGrowBytes]byte

// zeroFill writes zeros from offset from up to to, and starts their
// writeback.
func zeroFill(f *os.File, from, to int64) error {
	zeros := walZeros[:min(to-from, walGrowBytes)]
	for at := from; at < to; at += int64(len(zeros)) {
		if _, err := f.WriteAt(zeros[:min(int64(len(zeros)), to-at)], at); err != nil {
			return err
		}
	}
	startWriteback(f)
	return nil
}

// makeRoom extends a log's file with zeros when a frame of n bytes
// written at size would go past room, and returns the new room.
func makeRoom(f *os.File, size, room int64, n int) (int64, error) {
	if size+int64(n) <= room {
		return room, nil
	}
	grown := max(room, size) + max(walGrowBytes, int64(n))
	if err := zeroFill(f, max(room, size), grown); err != nil {
		return room, err
	}
	return grown, nil
}

// createWAL writes a log holding the checkpoint h and the frames carry
// returns in place of any previous one, atomically: a crash leaves the
// old log or the new one. The file is opened first: when it cannot be,
// nothing else was done (see postponable).
func createWAL(dir *os.File, h walHeader, room int64, carry func() ([][]byte, error)) (*wal, error) {
	tmp := filepath.Join(dir.Name(), WALFileName+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	carried, err := carry()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	h.carries = len(carried) > 0
	b := h.encode()
	for _, payload := range carried {
		b = appendFrame(b, payload)
	}
	if _, err = f.Write(b); err == nil {
		err = zeroFill(f, int64(len(b)), int64(len(b))+room)
	}
	if err == nil {
		err = syscall.Fdatasync(int(f.Fd()))
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir.Name(), WALFileName))
	}
	if err == nil {
		err = dir.Sync()
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("embedded: write-ahead log: %w", err)
	}
	return &wal{f: f, size: int64(len(b)), start: int64(len(b)), room: int64(len(b)) + room}, nil
}

// nextWAL is the log the checkpoint under way will start. From the
// start of its merge, each group's frame is written to it too (without a
// sync: until the checkpoint the current log is the durable one), so that
// the checkpoint only writes its header into the room kept for it and
// syncs it. Reading back and writing out at once every record committed
// during the merge took 5–14 s with appends stopped, after the 256 MiB
// merges of a national seed.
type nextWAL struct {
	f        *os.File
	from     uint64 // it holds every record after this position
	size     int64
	room     int64
	frames   bool
	pageSize int
	unsynced int64 // bytes written since the last writeback started
	// zeros: the log is extended with zeros ahead of its frames, for the
	// syncs it will take once current; a store whose appends sync no
	// frame gives it none (see walRoom)
	zeros bool
}

// walHeaderLen is the length of a header holding a meta page of pageSize
// bytes.
func walHeaderLen(pageSize int) int { return len(walMagic) + 4 + 8 + 8 + 4 + pageSize + 4 }

func startNextWAL(dir string, pageSize int, from uint64, zeros bool) (*nextWAL, error) {
	f, err := os.OpenFile(filepath.Join(dir, WALFileName+".tmp"), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	header := int64(walHeaderLen(pageSize))
	if _, err := f.Write(make([]byte, header)); err != nil {
		_ = f.Close()
		return nil, err
	}
	return &nextWAL{f: f, from: from, size: header, room: header, pageSize: pageSize, zeros: zeros}, nil
}

// add writes a frame, and starts its writeback every few MiB, so that the
// checkpoint's sync finds little left to write.
func (n *nextWAL) add(frame []byte) (err error) {
	if n.zeros {
		if n.room, err = makeRoom(n.f, n.size, n.room, len(frame)); err != nil {
			return err
		}
	}
	if _, err := n.f.Write(frame); err != nil {
		return err
	}
	n.size += int64(len(frame))
	n.frames = true
	if n.unsynced += int64(len(frame)); n.unsynced >= writebackBytes {
		n.unsynced = 0
		startWriteback(n.f)
	}
	return nil
}

// startWriteback asks the kernel to start writing f's dirty pages to
// disk, and returns without waiting for them. Advisory: an error leaves
// the writes to the next sync.
func startWriteback(f *os.File) {
	_ = unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
}

// finish writes the checkpoint h into the header's room, syncs the log
// and puts it in place of the current one: a crash leaves the old log or
// the new one.
func (n *nextWAL) finish(dir *os.File, h walHeader) (*wal, error) {
	h.carries = n.frames
	b := h.encode()
	if len(b) != walHeaderLen(n.pageSize) {
		n.abandon()
		return nil, fmt.Errorf("embedded: write-ahead log header of %d bytes, room for %d", len(b), walHeaderLen(n.pageSize))
	}
	_, err := n.f.WriteAt(b, 0) // the file offset stays at the end, for the next frames
	if err == nil {
		err = syscall.Fdatasync(int(n.f.Fd()))
	}
	if err == nil {
		err = os.Rename(n.f.Name(), filepath.Join(dir.Name(), WALFileName))
	}
	if err == nil {
		err = dir.Sync()
	}
	if err != nil {
		n.abandon()
		return nil, fmt.Errorf("embedded: write-ahead log: %w", err)
	}
	return &wal{f: n.f, size: n.size, start: n.size, room: n.room}, nil
}

// abandon drops the next log: the checkpoint carries the records over
// from bbolt instead. The file is left to be overwritten.
func (n *nextWAL) abandon() { _ = n.f.Close() }

// writebackBytes is how much a log or events.db takes in dirty pages
// before their writeback is started. The log's next sync waits for the
// writes in flight on the disk: at 8 MiB, offer-sized appends made at
// 1,000 a second had about twice the p99 latency they have at 1 MiB
// (BenchmarkAppendOpenLoop).
const writebackBytes = 1 << 20

func appendFrame(b, payload []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(payload)))
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(payload, crcTable))
	return append(b, payload...)
}

// write appends one frame and, if sync, syncs it: once it returns nil the
// frame survives any crash (unsynced, any crash of the process). Zeros
// ahead only make syncs cheaper: an unsynced log grows by its frames.
func (w *wal) write(payload []byte, sync bool) (err error) {
	frame := appendFrame(w.buf[:0], payload)
	w.buf = frame
	if sync {
		if w.room, err = makeRoom(w.f, w.size, w.room, len(frame)); err != nil {
			return err
		}
	}
	if _, err := w.f.Write(frame); err != nil {
		return err
	}
	w.size += int64(len(frame))
	if !sync {
		return nil
	}
	if err := syscall.Fdatasync(int(w.f.Fd())); err != nil {
		return err
	}
	if testHookLogged != nil {
		testHookLogged()
	}
	return nil
}

func (w *wal) close() error { return w.f.Close() }

// readWAL reads a log: its checkpoint, and the entries of every complete
// frame in order. A frame cut short or damaged ends the log there: its
// write was not synced, so no append it holds was acknowledged. So does
// a length of zero: the room filled ahead.
func readWAL(path string) (walHeader, []walEntry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return walHeader{}, nil, err
	}
	h, rest, err := decodeHeader(b)
	if err != nil {
		return h, nil, err
	}
	var entries []walEntry
	for len(rest) >= 8 {
		n := int(binary.LittleEndian.Uint32(rest))
		if n == 0 || n > len(rest)-8 || crc32.Checksum(rest[8:8+n], crcTable) != binary.LittleEndian.Uint32(rest[4:]) {
			break
		}
		frame, err := decodeFrame(rest[8 : 8+n])
		if err != nil {
			return h, nil, err
		}
		entries = append(entries, frame...)
		rest = rest[8+n:]
	}
	return h, entries, nil
}

func decodeHeader(b []byte) (walHeader, []byte, error) {
	const fixed = 8 + 4 + 8 + 8 + 4
	if len(b) < fixed+4 || !bytes.Equal(b[:7], walMagic[:7]) || (b[7] != walMagic[7] && b[7] != walCarrying) {
		return walHeader{}, nil, errWALHeader
	}
	h := walHeader{
		carries:  b[7] == walCarrying,
		pageSize: int(binary.LittleEndian.Uint32(b[8:])),
		txid:     binary.LittleEndian.Uint64(b[12:]),
		inode:    binary.LittleEndian.Uint64(b[20:]),
	}
	n := int(binary.LittleEndian.Uint32(b[28:]))
	if n != h.pageSize || len(b) < fixed+n+4 ||
		crc32.Checksum(b[:fixed+n], crcTable) != binary.LittleEndian.Uint32(b[fixed+n:]) ||
		binary.LittleEndian.Uint64(b[fixed+metaTxidOffset:]) != h.txid {
		return walHeader{}, nil, errWALHeader
	}
	h.meta = b[fixed : fixed+n]
	return h, b[fixed+n+4:], nil
}

func decodeFrame(p []byte) ([]walEntry, error) {
	var entries []walEntry
	for len(p) > 0 {
		pos, n := binary.Uvarint(p)
		if n <= 0 {
			return nil, errors.New("embedded: write-ahead log frame is damaged")
		}
		p = p[n:]
		l, n := binary.Uvarint(p)
		if n <= 0 || l > uint64(len(p)-n) {
			return nil, errors.New("embedded: write-ahead log frame is damaged")
		}
		entries = append(entries, walEntry{pos: pos, record: p[n : n+int(l)]})
		p = p[n+int(l):]
	}
	return entries, nil
}

// restoreMeta writes the checkpoint's meta page back into the database
// file and voids the other meta page, so that bbolt opens the checkpoint
// whatever later, unsynced commits left behind.
func restoreMeta(path string, h walHeader) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	slot := int64(h.txid % 2)
	if _, err = f.WriteAt(h.meta, slot*int64(h.pageSize)); err == nil {
		_, err = f.WriteAt(make([]byte, h.pageSize), (1-slot)*int64(h.pageSize))
	}
	if err == nil {
		err = syscall.Fdatasync(int(f.Fd()))
	}
	return errors.Join(err, f.Close())
}

// readMeta reads the meta page of transaction txid from the database
// file.
func readMeta(f *os.File, pageSize int, txid uint64) ([]byte, error) {
	meta := make([]byte, pageSize)
	if _, err := f.ReadAt(meta, int64(txid%2)*int64(pageSize)); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if got := binary.LittleEndian.Uint64(meta[metaTxidOffset:]); got != txid {
		return nil, fmt.Errorf("embedded: meta page holds transaction %d, want %d", got, txid)
	}
	return meta, nil
}
