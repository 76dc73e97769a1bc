package refdata

import (
	"cmp"
	"hash/maphash"
	"slices"
	"strings"
	"unicode"
)

// The communes file carries each commune's main postal code; a postal code
// may be shared by several communes, and a commune's other postal codes
// are not listed. CommuneOfPostalCode uses the city's name for both.

// postalIndex lists communes by postal code and by département and name,
// as sorted keys (see Data: no pointers).
type postalIndex struct {
	byCode []keyed // key: the packed postal code
	byName []keyed // key: a hash of département + "/" + folded name, checked on use
	seed   maphash.Seed
}

// keyed is a commune (its index in Data.communes) under a key.
type keyed struct {
	key uint64
	at  int32
}

func (d *Data) indexPostalCodes() {
	p := postalIndex{seed: maphash.MakeSeed()}
	for i := range d.communes {
		c := &d.communes[i]
		if k, ok := pack(d.str(c.postalCode)); ok {
			p.byCode = append(p.byCode, keyed{k, int32(i)})
		}
		p.byName = append(p.byName, keyed{p.nameKey(d.str(c.department), FoldName(d.str(c.name))), int32(i)})
	}
	order := func(a, b keyed) int { return cmp.Or(cmp.Compare(a.key, b.key), cmp.Compare(a.at, b.at)) }
	slices.SortFunc(p.byCode, order)
	slices.SortFunc(p.byName, order)
	d.postal = p
}

func (p *postalIndex) nameKey(department, folded string) uint64 {
	return maphash.String(p.seed, department+"/"+folded)
}

// under yields the communes under key in ks.
func under(ks []keyed, key uint64) []keyed {
	i, _ := slices.BinarySearchFunc(ks, key, func(e keyed, k uint64) int { return cmp.Compare(e.key, k) })
	j := i
	for j < len(ks) && ks[j].key == key {
		j++
	}
	return ks[i:j]
}

// withPostalCode lists the communes whose main postal code is zip.
func (d *Data) withPostalCode(zip string) []keyed {
	k, ok := pack(zip)
	if !ok {
		return nil
	}
	return under(d.postal.byCode, k)
}

// PostalCodeKnown reports whether a commune has postal code as its main one.
func (d *Data) PostalCodeKnown(zip string) bool { return len(d.withPostalCode(zip)) > 0 }

// CommuneOfPostalCode finds the commune a postal code and a city name
// designate: among the communes of that postal code, the one so named, else
// the most populous; with a postal code no commune has as its main one, the
// commune so named in the postal code's département.
func (d *Data) CommuneOfPostalCode(zip, city string) (Commune, bool) {
	name := FoldName(city)
	codes := d.withPostalCode(zip)
	for _, e := range codes {
		if FoldName(d.str(d.communes[e.at].name)) == name {
			return d.commune(e.at), true
		}
	}
	if len(codes) > 0 {
		best := d.commune(codes[0].at)
		for _, e := range codes[1:] {
			if c := d.commune(e.at); c.Population > best.Population || (c.Population == best.Population && c.Code < best.Code) {
				best = c
			}
		}
		return best, true
	}
	for _, dep := range postalDepartments(zip) {
		var found []int32
		for _, e := range under(d.postal.byName, d.postal.nameKey(dep, name)) {
			if c := &d.communes[e.at]; d.str(c.department) == dep && FoldName(d.str(c.name)) == name {
				found = append(found, e.at)
			}
		}
		if len(found) == 1 {
			return d.commune(found[0]), true
		}
	}
	return Commune{}, false
}

// postalDepartments are the départements a postal code may belong to.
func postalDepartments(zip string) []string {
	if len(zip) != 5 {
		return nil
	}
	switch {
	case strings.HasPrefix(zip, "97"):
		return []string{zip[:3]}
	case strings.HasPrefix(zip, "20"):
		return []string{"2A", "2B"}
	}
	return []string{zip[:2]}
}

// FoldName is a place name in the form names are compared in: lower case,
// without accents, words separated by one space ("Saint-Étienne" and
// "saint etienne" are the same).
func FoldName(s string) string {
	var b strings.Builder
	space := false
	for _, r := range strings.ToLower(s) {
		if f, ok := accents[r]; ok {
			r = f
		}
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteRune(r)
			space = false
			continue
		}
		space = true
	}
	return b.String()
}

var accents = map[rune]rune{
	'à': 'a', 'â': 'a', 'ä': 'a', 'á': 'a', 'ç': 'c', 'é': 'e', 'è': 'e', 'ê': 'e', 'ë': 'e', 'î': 'i', 'ï': 'i',
	'í': 'i', 'ô': 'o', 'ö': 'o', 'ó': 'o', 'ù': 'u', 'û': 'u', 'ü': 'u', 'ú': 'u', 'ÿ': 'y', 'ñ': 'n',
}
