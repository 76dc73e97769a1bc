package personal_test

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"passerelle/eventstore/personal"
)

// Processes sharing a key directory (API and projector processes on shared
// storage) agree on each key: a concurrent creation keeps one, and a key
// destroyed by one is gone for the others.
func TestKeysSharedBetweenProcesses(t *testing.T) {
	dir := t.TempDir()
	for trial := range 20 {
		subject := fmt.Sprint("pupil-", trial)
		stores := make([]*personal.DirKeys, 4)
		for i := range stores {
			var err error
			if stores[i], err = personal.OpenDir(dir); err != nil {
				t.Fatal(err)
			}
		}
		keys := make([][]byte, len(stores))
		var wg sync.WaitGroup
		for i, s := range stores {
			wg.Go(func() {
				k, ok, err := s.Key(subject, true)
				if err != nil || !ok {
					t.Errorf("create: %v %v", ok, err)
				}
				keys[i] = k
			})
		}
		wg.Wait()
		for i := range keys {
			if !bytes.Equal(keys[i], keys[0]) {
				t.Fatalf("trial %d: two processes hold different keys for one subject", trial)
			}
		}
		if err := stores[0].Destroy(subject); err != nil {
			t.Fatal(err)
		}
		for i, s := range stores {
			if _, ok, err := s.Key(subject, false); ok || err != nil {
				t.Fatalf("trial %d: process %d still holds a destroyed key (%v)", trial, i, err)
			}
		}
	}
}

// The same for keys a seed packed: processes read the packed key rather
// than create one of their own, and a destruction by one is seen at once
// by the others.
func TestPackedKeysSharedBetweenProcesses(t *testing.T) {
	dir := t.TempDir()
	packer, err := personal.NewPacker(dir)
	if err != nil {
		t.Fatal(err)
	}
	seeded := map[string][]byte{}
	for trial := range 20 {
		subject := fmt.Sprint("pupil-", trial)
		seeded[subject] = bytes.Repeat([]byte{byte(trial + 1)}, 32)
		if err := packer.Add(subject, seeded[subject]); err != nil {
			t.Fatal(err)
		}
	}
	if err := packer.Close(); err != nil {
		t.Fatal(err)
	}
	stores := make([]*personal.DirKeys, 4)
	for i := range stores {
		if stores[i], err = personal.OpenDir(dir); err != nil {
			t.Fatal(err)
		}
	}
	for subject, want := range seeded {
		var wg sync.WaitGroup
		for _, s := range stores {
			wg.Go(func() {
				if k, ok, err := s.Key(subject, true); err != nil || !ok || !bytes.Equal(k, want) {
					t.Errorf("%s: a process holds %x (%v, %v), not the seeded key", subject, k, ok, err)
				}
			})
		}
		wg.Wait()
		if err := stores[1].Destroy(subject); err != nil {
			t.Fatal(err)
		}
		for i, s := range stores {
			if _, ok, err := s.Key(subject, false); ok || err != nil {
				t.Fatalf("%s: process %d still holds a destroyed key (%v)", subject, i, err)
			}
		}
	}
}
