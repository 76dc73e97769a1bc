package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"passerelle/internal/auth"
)

// tokenKey is the configured key (hex), or the one kept in the data
// directory, created there when create (the service's first start).
func tokenKey(hexKey, dataDir string, create bool) ([]byte, error) {
	if hexKey != "" {
		k, err := hex.DecodeString(hexKey)
		if err != nil {
			return nil, fmt.Errorf("--token-key: must be hex: %w", err)
		}
		return k, nil
	}
	if create {
		return auth.LoadOrCreateKey(dataDir)
	}
	return auth.LoadKey(dataDir)
}

func token(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flagSet("token", "token --role ROLE [--subject ID] [--ttl DURATION] [--data-dir DIR] [--create-key]", stderr)
	role := fs.String("role", "", "role: "+strings.Join(auth.Roles, ", "))
	subject := fs.String("subject", "", "who: a pupil id, a school's UAI (school), an employer id (employer), PUPIL_ID:RANK (guardian: the child's pupil id and the guardian's rank, 1 or 2, as registered), …")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	dataDir := fs.String("data-dir", "./passerelle-data", "data directory holding the token key of the running configuration")
	keyHex := fs.String("token-key", "", "token signing key in hex (at least 32 bytes); empty: the key in --data-dir")
	create := fs.Bool("create-key", false, "create a token key in --data-dir if it has none (a service verifies the token only if it uses that key)")
	if _, err := parse(fs, args, 0); err != nil {
		return err
	}
	switch {
	case !auth.ValidRole(*role):
		fs.Usage()
		return fmt.Errorf("--role must be one of %s", strings.Join(auth.Roles, ", "))
	case auth.Subjects[*role] != "" && *subject == "":
		return fmt.Errorf("--subject is required for the role %s: whom the token stands for (%s)", *role, auth.Subjects[*role])
	case *ttl <= 0:
		return fmt.Errorf("--ttl must be positive, got %s", *ttl)
	}
	key, err := tokenKey(*keyHex, *dataDir, *create)
	if errors.Is(err, auth.ErrNoKey) {
		dir, _ := filepath.Abs(*dataDir)
		return fmt.Errorf("no token key in the data directory %s (looked for %s): run this where the service keeps its data, "+
			"give --data-dir DIR or --token-key, or --create-key to create one (a service started with another key rejects the token)",
			dir, filepath.Join(dir, auth.KeyFile))
	}
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
