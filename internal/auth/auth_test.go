package auth

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// A refused token is ErrInvalidToken and keeps the reason it was refused.
func TestVerifyKeepsTheReason(t *testing.T) {
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	h, err := NewHMAC(bytes.Repeat([]byte("k"), 32), func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewHMAC(bytes.Repeat([]byte("o"), 32), func() time.Time { return now })
	tok, err := h.Issue(Principal{Role: School, Subject: "0941234A"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := h.Verify(tok); err != nil || p != (Principal{Role: School, Subject: "0941234A"}) {
		t.Fatalf("verify: %+v %v", p, err)
	}
	if _, err := other.Verify(tok); !errors.Is(err, ErrInvalidToken) || !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
		t.Errorf("another key: %v, want ErrInvalidToken wrapping ErrTokenSignatureInvalid", err)
	}
	now = now.Add(2 * time.Hour)
	if _, err := h.Verify(tok); !errors.Is(err, ErrInvalidToken) || !errors.Is(err, jwt.ErrTokenExpired) {
		t.Errorf("expired: %v, want ErrInvalidToken wrapping ErrTokenExpired", err)
	}
}

// The key is created once, private to its owner, and read back after.
func TestLoadOrCreateKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	k1, err := LoadOrCreateKey(dir)
	if err != nil || len(k1) != 32 {
		t.Fatalf("create: %d bytes, %v", len(k1), err)
	}
	fi, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	if k2, err := LoadOrCreateKey(dir); err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("second load: %v, same key %v", err, bytes.Equal(k1, k2))
	}
	if err := os.WriteFile(filepath.Join(dir, KeyFile), []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(dir); err == nil {
		t.Fatal("a short key was accepted")
	}
}
