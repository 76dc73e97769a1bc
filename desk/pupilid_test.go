package desk

import (
	"slices"
	"strings"
	"testing"
)

// A pupil's ID is spelled back as it was given, canonical UUIDs held as
// their bytes and any other as it was; IDs sort as their spellings, and
// the index's map finds each pupil by its ID, and no other.
func TestPupilIDsSpelledBack(t *testing.T) {
	ids := []string{
		"00000003-0000-4000-8000-000000000001", "00000000-0000-0000-0000-000000000000", "ffffffff-ffff-4fff-bfff-ffffffffffff",
		"9b2f6c1e-3a4d-4e5f-8a7b-0c1d2e3f4a5b",
		// not canonical: kept as given
		"9B2F6C1E-3A4D-4E5F-8A7B-0C1D2E3F4A5B", "{9b2f6c1e-3a4d-4e5f-8a7b-0c1d2e3f4a5b}", "9b2f6c1e3a4d4e5f8a7b0c1d2e3f4a5b",
		"urn:uuid:9b2f6c1e-3a4d-4e5f-8a7b-0c1d2e3f4a5b", "pupil-1", "", "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz",
	}
	m := newPupilMap()
	var pupils []*pupil
	for i, s := range ids {
		id := idOf(s)
		if got := id.String(); got != s {
			t.Errorf("%q spelled back as %q", s, got)
		}
		if (id.other == nil) != (i < 4) {
			t.Errorf("%q held as bytes: %v", s, id.other == nil)
		}
		p := &pupil{id: id}
		m.put(p)
		pupils = append(pupils, p)
	}
	if m.len() != len(ids) {
		t.Fatalf("%d pupils in the map, want %d", m.len(), len(ids))
	}
	for i, s := range ids {
		if got := m.get(s); got != pupils[i] {
			t.Errorf("%q finds %v, want its own pupil", s, got)
		}
	}
	if got := m.get("00000003-0000-4000-8000-000000000002"); got != nil {
		t.Errorf("an unknown ID finds %v", got.id)
	}
	for _, a := range ids {
		for _, b := range ids {
			if got, want := idOf(a).compare(idOf(b)), strings.Compare(a, b); got != want {
				t.Errorf("%q against %q: %d, their spellings %d", a, b, got, want)
			}
		}
	}
	m.remove(pupils[0])
	m.remove(pupils[8])
	var left []string
	for p := range m.all() {
		left = append(left, p.id.String())
	}
	slices.Sort(left)
	want := slices.Concat(ids[1:8], ids[9:])
	slices.Sort(want)
	if !slices.Equal(left, want) || m.get(ids[0]) != nil || m.get(ids[8]) != nil {
		t.Errorf("after two removals the map holds %q, want %q", left, want)
	}
}
