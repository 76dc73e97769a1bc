package refdata

import (
	"strings"
	"unicode"
)

// The communes file carries each commune's main postal code; a postal code
// may be shared by several communes, and a commune's other postal codes
// are not listed. CommuneOfPostalCode uses the city's name for both.

// postalIndex lists communes by postal code and by département and name.
type postalIndex struct {
	byCode map[string][]string // postal code -> INSEE codes
	byName map[string][]string // département + "/" + folded name -> INSEE codes
}

func (d *Data) indexPostalCodes() {
	d.postal = postalIndex{byCode: map[string][]string{}, byName: map[string][]string{}}
	for code, c := range d.Communes {
		d.postal.byCode[c.PostalCode] = append(d.postal.byCode[c.PostalCode], code)
		k := c.Department + "/" + FoldName(c.Name)
		d.postal.byName[k] = append(d.postal.byName[k], code)
	}
}

// PostalCodeKnown reports whether a commune has postal code as its main one.
func (d *Data) PostalCodeKnown(zip string) bool { return len(d.postal.byCode[zip]) > 0 }

// CommuneOfPostalCode finds the commune a postal code and a city name
// designate: among the communes of that postal code, the one so named, else
// the most populous; with a postal code no commune has as its main one, the
// commune so named in the postal code's département.
func (d *Data) CommuneOfPostalCode(zip, city string) (Commune, bool) {
	name := FoldName(city)
	codes := d.postal.byCode[zip]
	for _, code := range codes {
		if FoldName(d.Communes[code].Name) == name {
			return d.Communes[code], true
		}
	}
	if len(codes) > 0 {
		best := d.Communes[codes[0]]
		for _, code := range codes[1:] {
			if c := d.Communes[code]; c.Population > best.Population || (c.Population == best.Population && c.Code < best.Code) {
				best = c
			}
		}
		return best, true
	}
	for _, dep := range postalDepartments(zip) {
		if codes := d.postal.byName[dep+"/"+name]; len(codes) == 1 {
			return d.Communes[codes[0]], true
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
