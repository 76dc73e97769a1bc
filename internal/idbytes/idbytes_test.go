package idbytes_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"passerelle/internal/idbytes"
)

// A canonical UUID is parsed and spelled back unchanged; every other form
// of ID, UUIDs in another form among them, is refused.
func TestParseOnlyWhatSpellGivesBack(t *testing.T) {
	for range 1000 {
		id := uuid.NewString()
		u, ok := idbytes.Parse(id)
		if !ok || idbytes.Spell(u) != id {
			t.Fatalf("%s: parsed %v, spelled back %s", id, ok, idbytes.Spell(u))
		}
	}
	if u, ok := idbytes.Parse(uuid.Nil.String()); !ok || u != ([16]byte{}) {
		t.Fatal("the nil UUID refused")
	}
	id := uuid.NewString()
	for _, other := range []string{"", "app-1", strings.ToUpper(id), "{" + id + "}", "urn:uuid:" + id,
		strings.ReplaceAll(id, "-", ""), strings.ReplaceAll(id, "-", "x"), id[:35] + "g", id + " "} {
		if _, ok := idbytes.Parse(other); ok {
			t.Fatalf("%q parsed as a canonical UUID", other)
		}
	}
}
