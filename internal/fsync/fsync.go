// Package fsync makes what a file's creation, renaming or removal did to
// its directory durable.
package fsync

import (
	"errors"
	"os"
)

// Dir syncs the directory dir: a file created, renamed or removed in it
// then survives a crash of the machine as it was.
func Dir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}
