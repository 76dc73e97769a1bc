package domain

import (
	"maps"
	"slices"
)

// RegisteredEventTypes lists the event types Decode knows, sorted.
func RegisteredEventTypes() []string { return slices.Sorted(maps.Keys(registry)) }
