package main

import (
	"fmt"

	"passerelle/eventstore"
)

// openStore opens a non-embedded event store from its connection string.
func openStore(url string) (eventstore.Store, error) {
	return nil, fmt.Errorf("event store %q: unsupported connection string", url)
}
