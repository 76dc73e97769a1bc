package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"

	"passerelle/internal/auth"
)

// tokenKey is the configured key (hex), or the one kept in the data
// directory, created on first use for the embedded default.
func tokenKey(hexKey, dataDir string) ([]byte, error) {
	if hexKey != "" {
		k, err := hex.DecodeString(hexKey)
		if err != nil {
			return nil, fmt.Errorf("--token-key: must be hex: %w", err)
		}
		return k, nil
	}
	return auth.LoadOrCreateKey(dataDir)
}

func token(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flagSet("token", "token --role ROLE [--subject ID] [--ttl DURATION] [--data-dir DIR]", stderr)
	role := fs.String("role", "", "role: "+strings.Join(auth.Roles, ", "))
	subject := fs.String("subject", "", "who: a pupil id, a school's UAI (school), an employer id (employer), PUPIL_ID:RANK (guardian: the child's pupil id and the guardian's rank, 1 or 2, as registered), …")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	dataDir := fs.String("data-dir", "./passerelle-data", "data directory holding the token key of the running configuration")
	keyHex := fs.String("token-key", "", "token signing key in hex (at least 32 bytes); empty: the key in --data-dir")
	if _, err := parse(fs, args, 0); err != nil {
		return err
	}
	if !auth.ValidRole(*role) {
		fs.Usage()
		return fmt.Errorf("--role must be one of %s", strings.Join(auth.Roles, ", "))
	}
	key, err := tokenKey(*keyHex, *dataDir)
	if err != nil {
		return err
	}
	h, err := auth.NewHMAC(key, nil)
	if err != nil {
		return err
	}
	t, err := h.Issue(auth.Principal{Role: *role, Subject: *subject}, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, t)
	return nil
}
