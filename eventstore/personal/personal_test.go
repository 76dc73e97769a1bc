package personal

import (
	"bytes"
	"os"
	"testing"

	"passerelle/domain"
)

// A key is created once, found again by a new handle on the directory,
// and gone for good once destroyed; no temporary file is left behind.
func TestDirKeys(t *testing.T) {
	dir := t.TempDir()
	keys, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := keys.Key("pupil-1", false); ok || err != nil {
		t.Fatalf("a key that was never created: ok %v, %v", ok, err)
	}
	k, ok, err := keys.Key("pupil-1", true)
	if !ok || err != nil || len(k) != 32 {
		t.Fatalf("create: %d bytes, ok %v, %v", len(k), ok, err)
	}
	again, _ := OpenDir(dir)
	if k2, ok, err := again.Key("pupil-1", true); !ok || err != nil || !bytes.Equal(k, k2) {
		t.Fatalf("reopened: same key %v, ok %v, %v", bytes.Equal(k, k2), ok, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("%d files in the key directory, want the one key", len(entries))
	}
	if err := again.Destroy("pupil-1"); err != nil {
		t.Fatal(err)
	}
	for _, h := range []*DirKeys{keys, again} {
		h.cache, h.uuids = map[string]cachedKey{}, map[[16]byte]cachedKey{} // another process's view: from disk
		if _, ok, err := h.Key("pupil-1", false); ok || err != nil {
			t.Fatalf("a destroyed key: ok %v, %v", ok, err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("%d files left after the destruction", len(entries))
	}
}

// SealIfKept seals as Seal does with a key that exists, and seals nothing,
// making no key, for a subject without one.
func TestSealIfKept(t *testing.T) {
	keys, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := NewCipher(keys)
	reg := &domain.PupilRegistered{PupilID: "pupil-1", BirthDate: "2012-03-04"}
	if out, ok, err := c.SealIfKept(reg); ok || err != nil || out != nil {
		t.Fatalf("no key yet: %v, %v, %v", out, ok, err)
	}
	if _, ok, _ := keys.Key("pupil-1", false); ok {
		t.Fatal("SealIfKept made a key")
	}
	if _, _, err := keys.Key("pupil-1", true); err != nil {
		t.Fatal(err)
	}
	out, ok, err := c.SealIfKept(reg)
	if !ok || err != nil {
		t.Fatalf("with a key: %v, %v", ok, err)
	}
	sealed := out.(*domain.PupilRegistered)
	if sealed.BirthDate != "" || sealed.Sealed == nil {
		t.Fatalf("not sealed: %+v", sealed)
	}
	if err := c.Open(sealed); err != nil || sealed.BirthDate != "2012-03-04" {
		t.Fatalf("opened: %q, %v", sealed.BirthDate, err)
	}
}
