package desk

import (
	"bytes"
	"iter"
	"maps"
	"strings"

	"passerelle/internal/idbytes"
)

// pupilID is a pupil's ID. Those the command layer makes are UUIDs, held
// as their 16 bytes: a national index holds 1.4 million pupils, and a
// string each, the same again as its key in the index's map, were a
// quarter of its objects. Any other ID is kept as it was given, and each
// is spelled back as it was.
type pupilID struct {
	uuid  [16]byte
	other *string // the ID as given, when it is not a UUID in canonical form
}

func idOf(s string) pupilID {
	if u, ok := idbytes.Parse(s); ok {
		return pupilID{uuid: u}
	}
	return pupilID{other: &s}
}

func (id pupilID) String() string {
	if id.other != nil {
		return *id.other
	}
	return idbytes.Spell(id.uuid)
}

// compare orders IDs as their spellings: the bytes of canonical UUIDs
// sort as their lower-case hexadecimal does.
func (id pupilID) compare(o pupilID) int {
	if id.other == nil && o.other == nil {
		return bytes.Compare(id.uuid[:], o.uuid[:])
	}
	return strings.Compare(id.String(), o.String())
}

// pupilMap is the index's pupils by ID, those of a UUID in a map whose
// keys hold no pointer.
type pupilMap struct {
	uuids  map[[16]byte]*pupil
	others map[string]*pupil
}

func newPupilMap() pupilMap {
	return pupilMap{uuids: map[[16]byte]*pupil{}, others: map[string]*pupil{}}
}

// get is the pupil of ID id, nil when there is none.
func (m pupilMap) get(id string) *pupil {
	if u, ok := idbytes.Parse(id); ok {
		return m.uuids[u]
	}
	return m.others[id]
}

func (m pupilMap) put(p *pupil) {
	if p.id.other != nil {
		m.others[*p.id.other] = p
	} else {
		m.uuids[p.id.uuid] = p
	}
}

func (m pupilMap) remove(p *pupil) {
	if p.id.other != nil {
		delete(m.others, *p.id.other)
	} else {
		delete(m.uuids, p.id.uuid)
	}
}

func (m pupilMap) len() int { return len(m.uuids) + len(m.others) }

// all is every pupil, in no order.
func (m pupilMap) all() iter.Seq[*pupil] {
	return func(yield func(*pupil) bool) {
		for p := range maps.Values(m.uuids) {
			if !yield(p) {
				return
			}
		}
		for p := range maps.Values(m.others) {
			if !yield(p) {
				return
			}
		}
	}
}
