package personal

import (
	"bytes"
	"fmt"
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

// A cipher sets up a subject's AES-GCM once and uses it again while the
// key store hands out the same key; it forgets it with the key, whether
// its own Forget or another process destroyed it, and keeps a bounded
// number.
func TestCipherKeepsItsAEADsWhileTheirKeysLast(t *testing.T) {
	dir := t.TempDir()
	keys, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := NewCipher(keys)
	sealed := func(pupil string) *domain.PupilRegistered {
		out, err := c.Seal(&domain.PupilRegistered{PupilID: pupil, FirstName: "Inès"})
		if err != nil {
			t.Fatal(err)
		}
		return out.(*domain.PupilRegistered)
	}
	open := func(c *Cipher, e *domain.PupilRegistered) *domain.PupilRegistered {
		t.Helper()
		cp := *e
		if err := c.Open(&cp); err != nil {
			t.Fatal(err)
		}
		return &cp
	}
	e1 := sealed("pupil-1")
	first := c.aeads["pupil-1"].aead
	if first == nil {
		t.Fatal("no AES-GCM kept after a seal")
	}
	if got := open(c, e1); got.FirstName != "Inès" || c.aeads["pupil-1"].aead != first {
		t.Fatalf("opened %q with a new AES-GCM (%v)", got.FirstName, c.aeads["pupil-1"].aead != first)
	}

	// another process destroys the key: the next open finds it gone
	other, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := NewCipher(other).Forget("pupil-1"); err != nil {
		t.Fatal(err)
	}
	if got := open(c, e1); !got.Erased || got.FirstName != "" {
		t.Fatalf("opened with a destroyed key: %+v", got)
	}
	if _, ok := c.aeads["pupil-1"]; ok {
		t.Error("the AES-GCM of a destroyed key kept")
	}

	// its own Forget
	e2 := sealed("pupil-2")
	open(c, e2)
	if err := c.Forget("pupil-2"); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.aeads["pupil-2"]; ok {
		t.Error("the AES-GCM of a forgotten pupil kept")
	}
	if got := open(c, e2); !got.Erased {
		t.Fatalf("opened after Forget: %+v", got)
	}

	// bounded: keys in memory, many subjects
	mem := NewCipher(memKeys{})
	for i := range keptAEADs + 100 {
		if _, err := mem.Seal(&domain.PupilRegistered{PupilID: fmt.Sprint("pupil-", i), FirstName: "Inès"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(mem.aeads); n != keptAEADs {
		t.Errorf("%d AES-GCM instances kept, want %d", n, keptAEADs)
	}
}

// memKeys keeps keys in memory: a test's key store of many subjects.
type memKeys map[string][]byte

func (m memKeys) Key(subject string, create bool) ([]byte, bool, error) {
	if k, ok := m[subject]; ok || !create {
		return k, ok, nil
	}
	k := bytes.Repeat([]byte{byte(len(m))}, 32)
	m[subject] = k
	return k, true, nil
}

func (m memKeys) Destroy(subject string) error {
	delete(m, subject)
	return nil
}
