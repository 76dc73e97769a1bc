package reconcile

import "passerelle/internal/idbytes"

// ref names an ID in a view's idTable: an application, an offer, a pupil,
// a convention or a booking; 0 is none (the empty ID).
type ref int32

// idTable holds each ID a view names once. The IDs the command layer
// makes are canonical UUIDs: they are held as their 16 bytes, in a map
// and a slice without pointers that the collector does not scan, and
// spelled out again when asked for. Any other ID is held as a string.
type idTable struct {
	uuids  map[[16]byte]ref
	others map[string]ref
	bytes  [][16]byte     // by ref; zero for the others
	names  map[ref]string // the others' IDs
}

func newIDTable() idTable {
	return idTable{uuids: map[[16]byte]ref{}, others: map[string]ref{}, bytes: make([][16]byte, 1), names: map[ref]string{}}
}

// find is the reference of id, if the table holds it.
func (t *idTable) find(id string) (ref, bool) {
	if id == "" {
		return 0, false
	}
	if u, ok := idbytes.Parse(id); ok {
		r, ok := t.uuids[u]
		return r, ok
	}
	r, ok := t.others[id]
	return r, ok
}

// ref is the reference of id, added when the table does not hold it.
func (t *idTable) ref(id string) ref {
	if id == "" {
		return 0
	}
	u, isUUID := idbytes.Parse(id)
	if isUUID {
		if r, ok := t.uuids[u]; ok {
			return r
		}
	} else if r, ok := t.others[id]; ok {
		return r
	}
	r := ref(len(t.bytes))
	if isUUID {
		t.uuids[u] = r
		t.bytes = append(t.bytes, u)
	} else {
		t.others[id] = r
		t.bytes = append(t.bytes, [16]byte{})
		t.names[r] = id
	}
	return r
}

// name is the ID r names ("" for 0).
func (t *idTable) name(r ref) string {
	if r == 0 {
		return ""
	}
	u := t.bytes[r]
	if u == ([16]byte{}) { // another form of ID, or the nil UUID
		if id, ok := t.names[r]; ok {
			return id
		}
	}
	return idbytes.Spell(u)
}

// strTable holds each of a few values many placements share once: a
// status, a convention's state, a week. 0 is "".
type strTable struct {
	index map[string]int32
	strs  []string
}

// ref is the reference of s, added when the table does not hold it.
func (t *strTable) ref(s string) int32 {
	if s == "" {
		return 0
	}
	if i, ok := t.index[s]; ok {
		return i
	}
	i := int32(len(t.strs))
	t.strs = append(t.strs, s)
	t.index[s] = i
	return i
}

// str is the value i refers to.
func (t *strTable) str(i int32) string { return t.strs[i] }
