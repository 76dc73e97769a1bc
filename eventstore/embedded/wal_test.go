package embedded

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"passerelle/eventstore"
)

// appended is an acknowledged append, as the caller saw it.
type appended struct {
	stream string
	evs    []eventstore.EventData
	res    eventstore.AppendResult
}

func appendSome(t *testing.T, s *Store, prefix string, n int) []appended {
	t.Helper()
	var out []appended
	for i := range n {
		stream := prefix + "-" + string(rune('a'+i%3))
		evs := events("Logged", 1+i%2)
		out = append(out, appended{stream, evs, mustAppend(t, s, stream, eventstore.Any, evs...)})
	}
	return out
}

// checkAcked opens dir and checks that it is consistent and holds every
// acknowledged event at its position.
func checkAcked(t *testing.T, dir string, acked []appended) {
	t.Helper()
	s := openT(t, dir)
	defer s.Close()
	if err := s.Check(); err != nil {
		t.Fatalf("check: %v", err)
	}
	for _, a := range acked {
		got, err := s.ReadStream(t.Context(), a.stream, eventstore.Backwards, a.res.LastRevision, len(a.evs))
		if err != nil {
			t.Fatalf("acknowledged append to %s: %v", a.stream, err)
		}
		last := a.evs[len(a.evs)-1]
		if len(got) != len(a.evs) || got[0].ID != last.ID || got[0].Position != a.res.Position {
			t.Fatalf("acknowledged %s@%d (%s at %d) lost", a.stream, a.res.LastRevision, last.ID, a.res.Position)
		}
	}
}

// copyCrashed copies a store's files to dir as a crash would leave them
// on the same disk: the log is made to name the copy's inode.
func copyCrashed(t *testing.T, from, to string, db []byte) {
	t.Helper()
	if db == nil {
		db = readFile(t, filepath.Join(from, FileName))
	}
	writeFile(t, filepath.Join(to, FileName), db)
	b := readFile(t, filepath.Join(from, WALFileName))
	h, rest, err := decodeHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.inode, err = inode(filepath.Join(to, FileName)); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(to, WALFileName), append(h.encode(), rest...))
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A machine crash may keep bbolt's unsynced meta pages and lose the data
// pages they point to; a process crash keeps them all. Either way Open
// must bring the file back to the checkpoint, whatever the later meta
// pages say, and replay the log: no acknowledged append is lost and the
// store is consistent. Both meta slots are tried.
func TestMachineCrashTearsTheUnsyncedCommits(t *testing.T) {
	parities := map[uint64]bool{}
	for before := range 2 {
		dir := t.TempDir()
		s := openT(t, dir)
		acked := appendSome(t, s, "before", 1+before)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = openT(t, dir) // checkpoints: events.db is synced here
		synced := readFile(t, filepath.Join(dir, FileName))
		h, _, err := readWAL(filepath.Join(dir, WALFileName))
		if err != nil {
			t.Fatal(err)
		}
		parities[h.txid%2] = true
		acked = append(acked, appendSome(t, s, "after", 12)...)

		// What survives: the file as synced, but for the newest meta
		// pages, and the log, which is synced at every commit.
		torn := t.TempDir()
		now := readFile(t, filepath.Join(dir, FileName))
		copy(synced[:2*h.pageSize], now[:2*h.pageSize])
		copyCrashed(t, dir, torn, synced)
		// A process crash keeps every write: the commits since the
		// checkpoint must have left its pages alone for the restore.
		kept := t.TempDir()
		copyCrashed(t, dir, kept, nil)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		checkAcked(t, torn, acked)
		checkAcked(t, kept, acked)
		if _, err := os.Stat(filepath.Join(torn, WALFileName)); err == nil {
			t.Fatal("the log is still there after a clean close")
		}
	}
	if len(parities) != 2 {
		t.Fatalf("checkpoints only in meta slot %v", parities)
	}
}

// TestUnsyncedAppendsSyncNoFrame checks that WithUnsyncedAppends writes
// the log's frames without syncing them, nor zeros ahead of them, even
// with a seed's long interval between checkpoints; that what it wrote
// reads back; and that the store opened again without it syncs each
// frame as before, into room filled ahead.
func TestUnsyncedAppendsSyncNoFrame(t *testing.T) {
	dir := t.TempDir()
	synced := 0
	testHookLogged = func() { synced++ }
	defer func() { testHookLogged = nil }()
	walSize := func() int64 {
		fi, err := os.Stat(filepath.Join(dir, WALFileName))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	s := openT(t, dir, WithUnsyncedAppends(), WithCheckpointEvery(1<<30))
	if n := walSize(); n > 1<<20 {
		t.Fatalf("an unsynced store's log is %d bytes long at Open: zeros ahead of frames never synced", n)
	}
	acked := appendSome(t, s, "unsynced", 5)
	if synced != 0 {
		t.Fatalf("%d frames synced WithUnsyncedAppends", synced)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir)
	if n := walSize(); n < 16<<20 {
		t.Fatalf("a store's log is %d bytes long at Open: want room for its frames' syncs", n)
	}
	acked = append(acked, appendSome(t, s, "synced", 2)...)
	if synced != 2 {
		t.Fatalf("%d frames synced for 2 appends, want 2", synced)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkAcked(t, dir, acked)
}

// The logs a checkpoint starts ahead, which the groups committed during
// its merge fill, get zeros ahead of their frames for the syncs they
// will take once current; with unsynced appends, which sync no frame,
// none.
func TestNextLogsGetZerosOnlyForSyncs(t *testing.T) {
	for _, unsynced := range []bool{false, true} {
		dir := t.TempDir()
		opts := []Option{smallCheckpoints(4<<10, 2)}
		if unsynced {
			opts = append(opts, WithUnsyncedAppends())
		}
		s := openT(t, dir, opts...)
		var longest int64
		for range 200 {
			appendSome(t, s, "zeros", 1)
			if fi, err := os.Stat(filepath.Join(dir, WALFileName)); err == nil {
				longest = max(longest, fi.Size())
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if grown := longest >= walGrowBytes; grown == unsynced {
			t.Fatalf("unsynced appends %v: the log was up to %d bytes long, checkpoints every 4 KiB of it", unsynced, longest)
		}
	}
}

// A process crash between the log write and bbolt's commit: the frame is
// synced and the caller may be acknowledged, bbolt holds nothing of it.
// Open replays it, and ignores a frame cut short after it.
func TestCrashBetweenLogAndCommitReplays(t *testing.T) {
	dir, crashed := t.TempDir(), t.TempDir()
	s := openT(t, dir)
	defer s.Close()
	acked := appendSome(t, s, "first", 3)
	copied := false
	testHookLogged = func() {
		if copied {
			return
		}
		copied = true
		copyCrashed(t, dir, crashed, nil)
	}
	defer func() { testHookLogged = nil }()
	acked = append(acked, appendSome(t, s, "logged", 1)...)
	testHookLogged = nil

	if !copied {
		t.Fatal("no frame was logged")
	}
	// The copy holds the last append only in the log, followed by the
	// start of a frame whose write was cut short, over the log's zeros.
	path := filepath.Join(crashed, WALFileName)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	half := make([]byte, 8)
	binary.LittleEndian.PutUint32(half, 1<<20)
	if _, err := f.WriteAt(append(half, bytes.Repeat([]byte{7}, 100)...), walEnd(t, path)); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	checkAcked(t, crashed, acked)
}

// walEnd is the offset past a log's last frame, where its zeros start.
func walEnd(t *testing.T, path string) int64 {
	t.Helper()
	b := readFile(t, path)
	_, rest, err := decodeHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	for len(rest) >= 8 {
		n := int(binary.LittleEndian.Uint32(rest))
		if n == 0 {
			break
		}
		rest = rest[8+n:]
	}
	if len(rest) == 0 {
		t.Fatal("the log has no room past its frames")
	}
	return int64(len(b) - len(rest))
}

// bbolt cannot grow its mapping while a read transaction is open, and the
// checkpoint is pinned by one (two while a checkpoint syncs): a commit
// that may grow it releases the pins first, and checkpoints at once. Were
// it not to, this would hang. With small checkpoints and a larger first
// mapping the growth lands during merges and syncs under way.
func TestGrowingPastTheMappingWithAPinnedCheckpoint(t *testing.T) {
	cases := map[string]struct {
		opt  Option
		mmap int
	}{
		"default":           {func(*options) {}, 64 << 10},
		"small checkpoints": {smallCheckpoints(24<<10, 4), 1 << 20},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir, c.opt, func(o *options) { o.initialMmap = c.mmap })
			if err != nil {
				t.Fatal(err)
			}
			acked := growPastTheMapping(t, s)
			if err := s.Check(); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Stat(filepath.Join(dir, FileName)); err != nil || fi.Size() <= int64(c.mmap) {
				t.Fatalf("the file did not grow past the mapping: %v", err)
			}
			checkAcked(t, dir, acked)
		})
	}
}

// The store's lower bound of bbolt's mapping follows bbolt's rule (32
// KiB doubled up to 1 GiB, then a GiB at a time): taking the high water
// mark instead made every commit past the first mapping look as if it
// might outgrow it, drop the pin and checkpoint. It is bbolt's mapping
// once the file grew, and never more: a commit would then wait for the
// pin forever.
func TestMappedAtLeast(t *testing.T) {
	for high, want := range map[int64]int64{1: 32 << 10, 40 << 10: 64 << 10, 1 << 20: 1 << 20, 1<<30 + 1: 2 << 30, 5 << 30: 5 << 30} {
		if got := mappedAtLeast(high); got != want {
			t.Errorf("mappedAtLeast(%d) = %d, want %d", high, got, want)
		}
	}
	s := openT(t, t.TempDir(), func(o *options) { o.initialMmap = 64 << 10 })
	growPastTheMapping(t, s)
	flushT(t, s)
	// bbolt does not tell its mapping's size: read it for the test.
	mapped := reflect.ValueOf(s.db).Elem().FieldByName("datasz").Int()
	if s.mapped != mapped || mapped <= 64<<10 {
		t.Errorf("the store takes bbolt's mapping for %d bytes; it is %d", s.mapped, mapped)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// The store maps 64 GiB of address space at Open, so that a national
// log grows without a remap; where the kernel refuses that much (a limit
// on address space), it maps 1 GiB and remaps as the file grows. The
// mapping asked for here, 200 TiB, is more than any user address space.
func TestOpenMapsLessWhenAddressSpaceIsRefused(t *testing.T) {
	if initialMmapBytes < 1<<36 {
		t.Skip("the default mapping is already the fallback here")
	}
	s := openT(t, t.TempDir(), func(o *options) { o.initialMmap = 200 << 40 })
	defer s.Close()
	if s.mapped != fallbackMmapBytes {
		t.Errorf("mapped %d bytes, want the fallback %d", s.mapped, fallbackMmapBytes)
	}
	acked := growPastTheMapping(t, s)
	if got := reflect.ValueOf(s.db).Elem().FieldByName("datasz").Int(); got != fallbackMmapBytes {
		t.Errorf("bbolt maps %d bytes", got)
	}
	if err := s.Check(); err != nil || len(acked) == 0 {
		t.Fatal(err)
	}
}

// growPastTheMapping appends 40 groups of four 8 KB events, and fails
// the test if they take more than a minute (the store is left stuck).
func growPastTheMapping(t *testing.T, s *Store) []appended {
	t.Helper()
	done := make(chan []appended, 1)
	go func() {
		var acked []appended
		for i := range 40 {
			evs := events("Big", 4)
			for j := range evs {
				evs[j].Data = []byte(`{"pad":"` + strings.Repeat("x", 8000) + `"}`)
			}
			stream := "grow-" + string(rune('a'+i%4))
			res, err := s.Append(t.Context(), stream, eventstore.Any, evs...)
			if err != nil {
				t.Error(err)
				break
			}
			acked = append(acked, appended{stream, evs, res})
		}
		done <- acked
	}()
	select {
	case acked := <-done:
		return acked
	case <-time.After(time.Minute):
		t.Fatal("appends hang while the file grows past bbolt's mapping")
		return nil
	}
}

// A log left beside another events.db (a copy put in place after a crash)
// is refused rather than written into that file.
func TestLogOfAnotherFileIsRefused(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	appendSome(t, s, "x", 2)
	crashed := t.TempDir()
	copyCrashed(t, dir, crashed, nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// replace the file by a copy, as a restore from a backup does:
	// another inode
	path := filepath.Join(crashed, FileName)
	writeFile(t, path+".backup", readFile(t, path))
	if err := os.Rename(path+".backup", path); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(crashed); err == nil || !strings.Contains(err.Error(), "another") {
		if s != nil {
			s.Close()
		}
		t.Fatalf("open with another file's log: %v", err)
	}
}

// bbolt keeps the free pages in memory while the store is open, and a
// clean Close writes them once: the file's current meta page then names a
// freelist, so the next Open reads it instead of walking every page, and
// an older build (which expects one) opens it as before.
func TestCloseWritesTheFreelist(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	appendSome(t, s, "free", 40)
	if !s.db.NoFreelistSync {
		t.Fatal("the open store syncs its freelist at every commit")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	const pageSize, freelistOffset = 4096, 16 + 16 + 16
	var txid uint64
	current := -1
	for slot := range 2 { // the meta page of the higher transaction is current
		if id := binary.LittleEndian.Uint64(b[slot*pageSize+metaTxidOffset:]); current < 0 || id > txid {
			txid, current = id, slot
		}
	}
	if fl := binary.LittleEndian.Uint64(b[current*pageSize+freelistOffset:]); fl == ^uint64(0) || fl < 2 {
		t.Fatalf("the meta page of transaction %d names freelist page %#x", txid, fl)
	}
	s = openT(t, dir)
	defer s.Close()
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
}

// Frames land in the room filled ahead without changing the file's
// length; past it the file grows, and every frame reads back.
func TestLogFillsItsRoomThenGrows(t *testing.T) {
	dir := t.TempDir()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	meta := make([]byte, 4096)
	binary.LittleEndian.PutUint64(meta[metaTxidOffset:], 2)
	const room = 64 << 10
	w, err := createWAL(d, walHeader{pageSize: 4096, txid: 2, meta: meta}, room, func() ([][]byte, error) { return nil, nil })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.close() }()
	path := filepath.Join(dir, WALFileName)
	length := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	made := length()
	if made != w.start+room {
		t.Fatalf("log made %d bytes long, want %d", made, w.start+room)
	}
	var want []walEntry
	frame := func(pos uint64, size int) {
		rec := bytes.Repeat([]byte{byte(pos)}, size)
		want = append(want, walEntry{pos: pos, record: rec})
		if err := w.write(appendEntry(nil, pos, rec), true); err != nil {
			t.Fatal(err)
		}
	}
	for pos := uint64(1); pos <= 20; pos++ {
		frame(pos, 1000)
	}
	if got := length(); got != made {
		t.Fatalf("frames within the room changed the log's length from %d to %d", made, got)
	}
	frame(21, 3*walGrowBytes/2) // past the room
	frame(22, 1000)
	if got := length(); got < w.size || got == made {
		t.Fatalf("log %d bytes long after %d bytes of frames", got, w.size)
	}
	_, got, err := readWAL(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("read %d entries back, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].pos != want[i].pos || !bytes.Equal(got[i].record, want[i].record) {
			t.Fatalf("entry %d read back as position %d, %d bytes", i, got[i].pos, len(got[i].record))
		}
	}
}
