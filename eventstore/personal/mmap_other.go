//go:build !unix

package personal

import (
	"errors"
	"os"
)

// mapFile does not map files here: packs are read.
func mapFile(*os.File, int64) ([]byte, error) { return nil, errors.New("files are not mapped") }

func unmapFile([]byte) {}
