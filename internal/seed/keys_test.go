package seed_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"passerelle/eventstore/personal"
	"passerelle/internal/seed"
)

// A seed's keys take a few files, not one per pupil; concurrent creations
// of one subject agree on one key and write one record.
func TestBulkKeysPacked(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	bulk, err := seed.OpenBulkKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	const pupils = 5000
	keys := make([][]byte, pupils)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range pupils { // every worker creates every key
				k, ok, err := bulk.Key(fmt.Sprint("pupil-", i), true)
				if err != nil || !ok {
					t.Errorf("create: %v %v", ok, err)
					return
				}
				if w == 0 {
					keys[i] = k
				}
			}
		})
	}
	wg.Wait()
	if err := bulk.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := bulk.Close(); err != nil {
		t.Fatal(err)
	}
	var files int
	var size int64
	err = filepath.WalkDir(dir, func(_ string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			fi, ierr := e.Info()
			files, size = files+1, size+fi.Size()
			return ierr
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if files > 256 || size != int64(files*64+pupils*64) {
		t.Fatalf("%d keys in %d files of %d bytes: want at most 256 files, a header and one record per key", pupils, files, size)
	}
	d, err := personal.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range keys {
		if k, ok, err := d.Key(fmt.Sprint("pupil-", i), false); !ok || err != nil || !bytes.Equal(k, want) {
			t.Fatalf("pupil-%d: DirKeys reads %x (%v, %v), the seed used %x", i, k, ok, err, want)
		}
	}
}

// A seed into a key directory that already holds keys (written by a
// service, or an earlier seed) uses them rather than replacing them, so
// that what they sealed stays readable.
func TestBulkKeysKeepExistingKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	d, err := personal.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	file, _, err := d.Key("pupil-file", true)
	if err != nil {
		t.Fatal(err)
	}
	first, err := seed.OpenBulkKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	packed, _, err := first.Key("pupil-packed", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := seed.OpenBulkKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = again.Close() }()
	for s, want := range map[string][]byte{"pupil-file": file, "pupil-packed": packed} {
		if k, ok, err := again.Key(s, true); !ok || err != nil || !bytes.Equal(k, want) {
			t.Fatalf("%s: a second seed made a new key (%v, %v)", s, ok, err)
		}
	}
	if err := again.Destroy("pupil-packed"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := d.Key("pupil-packed", false); ok || err != nil {
		t.Fatalf("destroyed by the seed, still read by a service: %v", err)
	}
	k, ok, err := again.Key("pupil-packed", true)
	if !ok || err != nil || bytes.Equal(k, packed) {
		t.Fatalf("created again after its destruction: %v, %v", ok, err)
	}
	if got, ok, _ := d.Key("pupil-packed", false); !ok || !bytes.Equal(got, k) {
		t.Fatal("the key created again is not what a service reads")
	}
}
