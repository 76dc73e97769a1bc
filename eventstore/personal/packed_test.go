package personal

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/uuid"
)

// packKeys adds a new key for each subject with a Packer, as a seed does,
// and returns them.
func packKeys(t testing.TB, dir string, subjects ...string) map[string][]byte {
	t.Helper()
	p, err := NewPacker(dir)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]byte{}
	for _, s := range subjects {
		k := make([]byte, 32)
		_, _ = rand.Read(k)
		if err := p.Add(s, k); err != nil {
			t.Fatal(err)
		}
		keys[s] = k
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	return keys
}

func subjects(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprint("pupil-", i)
		if i%2 == 1 { // the command layer's IDs, which DirKeys keeps apart
			s[i] = uuid.NewSHA1(uuid.NameSpaceOID, []byte(s[i])).String()
		}
	}
	return s
}

// everyFile returns the bytes of every file under dir.
func everyFile(t *testing.T, dir string) []byte {
	t.Helper()
	var all []byte
	err := filepath.WalkDir(dir, func(path string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		all = append(all, b...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// Packed keys are read by DirKeys like key files; a destroyed one is gone
// from every file of the directory (key and hash), and gone at once for a
// handle that had it cached; creating it again makes a new key file.
func TestPackedKeys(t *testing.T) {
	dir := t.TempDir()
	all := subjects(2000) // several records in every one of the 256 files
	keys := packKeys(t, dir, all...)
	d, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		if k, ok, err := d.Key(s, false); !ok || err != nil || !bytes.Equal(k, keys[s]) {
			t.Fatalf("%s: read %x, %v, %v; want %x", s, k, ok, err, keys[s])
		}
	}
	if _, ok, err := d.Key("pupil-never", false); ok || err != nil {
		t.Fatalf("a key never created: %v, %v", ok, err)
	}
	other, _ := OpenDir(dir) // another process
	victim := all[1234]
	if _, ok, _ := other.Key(victim, false); !ok {
		t.Fatal("not read by a second handle")
	}
	if err := d.Destroy(victim); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(victim))
	disk := everyFile(t, dir)
	if bytes.Contains(disk, keys[victim]) || bytes.Contains(disk, sum[:recordHash]) {
		t.Fatal("the destroyed key, or its subject's hash, is still in the directory's files")
	}
	for i, h := range []*DirKeys{d, other} {
		if k, ok, err := h.Key(victim, false); ok || err != nil {
			t.Fatalf("handle %d still reads the destroyed key %x (%v)", i, k, err)
		}
	}
	for _, s := range all {
		if k, ok, _ := other.Key(s, false); s != victim && (!ok || !bytes.Equal(k, keys[s])) {
			t.Fatalf("%s lost with the destruction of another key", s)
		}
	}
	k, ok, err := other.Key(victim, true)
	if !ok || err != nil || bytes.Equal(k, keys[victim]) {
		t.Fatalf("created again: %v, %v, the old key %v", ok, err, bytes.Equal(k, keys[victim]))
	}
	if _, err := os.Stat(other.path(&sum)); err != nil {
		t.Fatalf("a key created after a destruction is not a key file: %v", err)
	}
	if again, ok, _ := d.Key(victim, false); !ok || !bytes.Equal(again, k) {
		t.Fatal("the new key is not what another handle reads")
	}
}

// A directory written before packing (key files only) reads as before,
// and when a subject has both a key file and a packed key, the file wins
// for every handle.
func TestKeyFilesAndPackedKeysTogether(t *testing.T) {
	dir := t.TempDir()
	old, _ := OpenDir(dir)
	files := map[string][]byte{}
	for _, s := range subjects(50) {
		k, _, err := old.Key(s, true)
		if err != nil {
			t.Fatal(err)
		}
		files[s] = k
	}
	packed := packKeys(t, dir, "pupil-packed", "pupil-0")
	d, _ := OpenDir(dir)
	for s, want := range files {
		if k, ok, err := d.Key(s, false); !ok || err != nil || !bytes.Equal(k, want) {
			t.Fatalf("%s: the key file is not what is read (%v, %v)", s, ok, err)
		}
	}
	if k, ok, _ := d.Key("pupil-packed", false); !ok || !bytes.Equal(k, packed["pupil-packed"]) {
		t.Fatal("packed key not read next to key files")
	}
	if err := d.Destroy("pupil-0"); err != nil {
		t.Fatal(err)
	}
	disk := everyFile(t, dir)
	if bytes.Contains(disk, files["pupil-0"]) || bytes.Contains(disk, packed["pupil-0"]) {
		t.Fatal("a key of a destroyed subject is left in one of the layouts")
	}
	if _, ok, _ := old.Key("pupil-0", false); ok {
		t.Fatal("destroyed in both layouts, still read")
	}
}

// A seed cut short leaves a pack with a torn tail: a half record, a record
// of zeros, a record of noise. They are not keys; the whole records before
// them still are, and a new Packer appends after them.
func TestPackCutShort(t *testing.T) {
	dir := t.TempDir()
	keys := packKeys(t, dir, subjects(300)...)
	path := filepath.Join(dir, packedDir, packName(0))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	noise := make([]byte, recordSize)
	_, _ = rand.Read(noise)
	for _, b := range [][]byte{make([]byte, recordSize), noise, noise[:20]} {
		if _, err := f.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	d, _ := OpenDir(dir)
	for s, want := range keys {
		if k, ok, err := d.Key(s, false); !ok || err != nil || !bytes.Equal(k, want) {
			t.Fatalf("%s: %v, %v after a torn tail", s, ok, err)
		}
	}
	var late string // a subject of the torn file's bucket
	for i := 0; late == ""; i++ {
		if s := fmt.Sprint("late-", i); sha256.Sum256([]byte(s))[0] == 0 {
			late = s
		}
	}
	more := packKeys(t, dir, late)
	if k, ok, err := d.Key(late, false); !ok || err != nil || !bytes.Equal(k, more[late]) {
		t.Fatalf("a key appended after a torn tail: %v, %v", ok, err)
	}
	if fi, _ := os.Stat(path); fi.Size()%recordSize != 0 {
		t.Fatalf("pack of %d bytes: records no longer aligned", fi.Size())
	}
}

// A destruction cut short after the key was overwritten, before the hash
// was: the key is gone, and destroying again overwrites the hash.
func TestPackedDestructionCutShort(t *testing.T) {
	dir := t.TempDir()
	packKeys(t, dir, "pupil-1", "pupil-2")
	sum := sha256.Sum256([]byte("pupil-1"))
	path := filepath.Join(dir, packedDir, packName(sum[0]))
	b, _ := os.ReadFile(path)
	at := bytes.Index(b, sum[:recordHash])
	copy(b[at+recordHash:at+recordSize], make([]byte, recordSize-recordHash))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	d, _ := OpenDir(dir)
	if _, ok, err := d.Key("pupil-1", false); ok || err != nil {
		t.Fatalf("a key half destroyed is read: %v", err)
	}
	if err := d.Destroy("pupil-1"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); bytes.Contains(b, sum[:recordHash]) {
		t.Fatal("destroying again left the subject's hash")
	}
	if _, ok, _ := d.Key("pupil-2", false); !ok {
		t.Fatal("the other key was lost")
	}
}

// Two records whose hashes share the index prefix (one forged): each
// subject still finds its own key.
func TestPackIndexPrefixShared(t *testing.T) {
	dir := t.TempDir()
	keys := packKeys(t, dir, "pupil-1")
	sum := sha256.Sum256([]byte("pupil-1"))
	forged := sum
	forged[20] ^= 0xff
	path := filepath.Join(dir, packedDir, packName(sum[0]))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	rec := make([]byte, recordSize)
	encodeRecord(rec, &forged, bytes.Repeat([]byte{7}, 32))
	if _, err := f.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	d, _ := OpenDir(dir)
	if k, ok, err := d.Key("pupil-1", false); !ok || err != nil || !bytes.Equal(k, keys["pupil-1"]) {
		t.Fatalf("shared prefix: read %x, %v, %v", k, ok, err)
	}
	if p := d.packs[sum[0]]; p.index[indexPrefix(&sum)] != ambiguous {
		t.Fatal("the shared prefix is not marked")
	}
}

// A file in packed/ that is not a pack is an error, not an empty pack.
func TestPackHeaderChecked(t *testing.T) {
	dir := t.TempDir()
	sum := sha256.Sum256([]byte("pupil-1"))
	if err := os.MkdirAll(filepath.Join(dir, packedDir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, packedDir, packName(sum[0])), bytes.Repeat([]byte("x"), 4*recordSize), 0o600); err != nil {
		t.Fatal(err)
	}
	d, _ := OpenDir(dir)
	if _, _, err := d.Key("pupil-1", false); err == nil {
		t.Fatal("a foreign file read as a pack")
	}
	p, _ := NewPacker(dir)
	if err := p.Add("pupil-1", make([]byte, 32)); err == nil {
		t.Fatal("a key appended to a foreign file")
	}
}

// Keys packed while a reader is using the directory are found, as they
// are added.
func TestPackedKeysReadWhileAdded(t *testing.T) {
	dir := t.TempDir()
	p, err := NewPacker(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Close() }()
	d, _ := OpenDir(dir)
	all := subjects(3000)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < len(all); i += 4 {
				k := bytes.Repeat([]byte{byte(i%255 + 1)}, 32)
				if err := p.Add(all[i], k); err != nil {
					t.Error(err)
					return
				}
				if got, ok, err := d.Key(all[i], false); !ok || err != nil || !bytes.Equal(got, k) {
					t.Errorf("%s just added: %v, %v", all[i], ok, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkPackerAdd(b *testing.B) {
	p, err := NewPacker(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = p.Close() }()
	k := make([]byte, 32)
	for i := 0; b.Loop(); i++ {
		if err := p.Add(fmt.Sprint("pupil-", i), k); err != nil {
			b.Fatal(err)
		}
	}
}

// Every key read once by a new handle (a service starting on a seeded
// directory), packed and as key files.
func BenchmarkEveryKeyRead(b *testing.B) {
	all := subjects(20000)
	for _, layout := range []string{"packed", "files"} {
		b.Run(layout, func(b *testing.B) {
			dir := b.TempDir()
			if layout == "packed" {
				packKeys(b, dir, all...)
			} else {
				d, _ := OpenDir(dir)
				for _, s := range all {
					if _, _, err := d.Key(s, true); err != nil {
						b.Fatal(err)
					}
				}
			}
			for b.Loop() {
				d, _ := OpenDir(dir)
				for _, s := range all {
					if _, ok, err := d.Key(s, false); !ok || err != nil {
						b.Fatal(ok, err)
					}
				}
				for _, p := range d.packs {
					if p != nil {
						_ = p.f.Close()
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(all)), "ns/key")
		})
	}
}
