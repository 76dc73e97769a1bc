// Package refdata holds the French reference data the service validates
// input against: communes (INSEE codes with coordinates), départements and
// the 51 sector codes of the national platform. The CSV files are copies of
// the shared reference data, embedded so the binary needs nothing at run time.
package refdata

import (
	"bytes"
	_ "embed"
	"encoding/csv"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"strings"
	"sync"
)

//go:embed communes.csv
var communesCSV []byte

//go:embed departements.csv
var departementsCSV []byte

//go:embed sectors.csv
var sectorsCSV []byte

// Commune is one INSEE commune or municipal arrondissement.
type Commune struct {
	Code       string
	Name       string
	Department string
	Region     string
	PostalCode string
	Lat, Lon   float64
	Population int
}

// Department is one French département.
type Department struct {
	Code, Name, Region string
	Lat, Lon           float64
}

// Sector is one of the national platform's sector codes (s1…s51).
type Sector struct{ Code, Name string }

// Data is the parsed reference data.
//
// The communes are kept without pointers: their strings end to end in one
// string, each commune a record of offsets into it, looked up through maps
// and sorted slices of integers. The garbage collector scans every live
// pointer at each cycle, and the 35,000 communes as a map of structs of
// strings, with their postal index, were 110,000 objects and 13 ms of
// marking per cycle in every process (more than half of a server's
// marking at 1,000 commands a second).
type Data struct {
	Departments map[string]Department
	Sectors     map[string]Sector
	text        string           // every commune's strings, end to end
	communes    []commune        // in code order
	byCode      map[uint64]int32 // packed INSEE code -> index in communes
	postal      postalIndex
}

// commune is a Commune as offsets into Data.text.
type commune struct {
	code, name, department, region, postalCode span
	lat, lon                                   float64
	population                                 int64
}

// span is a string within Data.text.
type span struct{ off, n uint32 }

func (d *Data) str(s span) string { return d.text[s.off : s.off+s.n] }

func (d *Data) commune(i int32) Commune {
	c := &d.communes[i]
	return Commune{Code: d.str(c.code), Name: d.str(c.name), Department: d.str(c.department), Region: d.str(c.region),
		PostalCode: d.str(c.postalCode), Lat: c.lat, Lon: c.lon, Population: int(c.population)}
}

// pack is a short code (INSEE code, postal code) as an integer key; ok is
// false for a code too long to be one.
func pack(code string) (k uint64, ok bool) {
	if len(code) > 7 {
		return 0, false
	}
	k = uint64(len(code)) << 56
	for i := range len(code) {
		k |= uint64(code[i]) << (8 * i)
	}
	return k, true
}

var (
	once   sync.Once
	loaded *Data
	errLd  error
)

// Load parses the embedded data once and returns it.
func Load() (*Data, error) {
	once.Do(func() { loaded, errLd = parse() })
	return loaded, errLd
}

// MustLoad is Load for program start-up, where broken embedded data is a
// build defect.
func MustLoad() *Data {
	d, err := Load()
	if err != nil {
		panic(err)
	}
	return d
}

// Commune looks up a commune by INSEE code.
func (d *Data) Commune(code string) (Commune, bool) {
	i, ok := d.index(code)
	if !ok {
		return Commune{}, false
	}
	return d.commune(i), true
}

func (d *Data) index(code string) (int32, bool) {
	k, ok := pack(code)
	if !ok {
		return 0, false
	}
	i, ok := d.byCode[k]
	return i, ok
}

// Communes yields every commune, in code order.
func (d *Data) Communes() iter.Seq[Commune] {
	return func(yield func(Commune) bool) {
		for i := range d.communes {
			if !yield(d.commune(int32(i))) {
				return
			}
		}
	}
}

// CommuneCount is the number of communes.
func (d *Data) CommuneCount() int { return len(d.communes) }

// Sector looks up a sector code.
func (d *Data) Sector(code string) (Sector, bool) { s, ok := d.Sectors[code]; return s, ok }

// Department looks up a département code.
func (d *Data) Department(code string) (Department, bool) {
	x, ok := d.Departments[code]
	return x, ok
}

func parse() (*Data, error) {
	d := &Data{Departments: map[string]Department{}, Sectors: map[string]Sector{}}
	if err := d.parseCommunes(); err != nil {
		return nil, fmt.Errorf("communes: %w", err)
	}
	rows, err := records(departementsCSV, 6)
	if err != nil {
		return nil, fmt.Errorf("departements: %w", err)
	}
	for _, r := range rows {
		lat, _ := strconv.ParseFloat(r[3], 64)
		lon, _ := strconv.ParseFloat(r[4], 64)
		d.Departments[r[0]] = Department{Code: r[0], Name: r[1], Region: r[2], Lat: lat, Lon: lon}
	}
	rows, err = records(sectorsCSV, 2)
	if err != nil {
		return nil, fmt.Errorf("sectors: %w", err)
	}
	for _, r := range rows {
		d.Sectors[r[0]] = Sector{Code: r[0], Name: r[1]}
	}
	d.indexPostalCodes()
	return d, nil
}

func (d *Data) parseCommunes() error {
	rows, err := records(communesCSV, 10)
	if err != nil {
		return err
	}
	slices.SortFunc(rows, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
	var text strings.Builder
	add := func(s string) span {
		sp := span{off: uint32(text.Len()), n: uint32(len(s))}
		text.WriteString(s)
		return sp
	}
	d.communes = make([]commune, 0, len(rows))
	d.byCode = make(map[uint64]int32, len(rows))
	for _, r := range rows {
		lat, err1 := strconv.ParseFloat(r[5], 64)
		lon, err2 := strconv.ParseFloat(r[6], 64)
		pop, _ := strconv.ParseInt(r[7], 10, 64)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("bad coordinates for %s", r[0])
		}
		k, ok := pack(r[0])
		if !ok {
			return fmt.Errorf("code %q: longer than 7 characters", r[0])
		}
		if _, dup := d.byCode[k]; dup {
			return fmt.Errorf("code %s: twice", r[0])
		}
		d.byCode[k] = int32(len(d.communes))
		d.communes = append(d.communes, commune{code: add(r[0]), name: add(r[1]), department: add(r[2]), region: add(r[3]),
			postalCode: add(r[4]), lat: lat, lon: lon, population: pop})
	}
	d.text = text.String()
	return nil
}

func records(b []byte, cols int) ([][]string, error) {
	r := csv.NewReader(bytes.NewReader(b))
	r.FieldsPerRecord = cols
	rows, err := r.ReadAll()
	if err != nil {
		return nil, err
	}
	if len(rows) < 2 {
		return nil, fmt.Errorf("no rows")
	}
	return rows[1:], nil
}

// CommuneDepartment returns the département of a commune (domain.Places).
func (d *Data) CommuneDepartment(code string) (string, bool) {
	i, ok := d.index(code)
	if !ok {
		return "", false
	}
	return d.str(d.communes[i].department), true
}

// CommuneCentre returns the coordinates of a commune's centre
// (domain.Places).
func (d *Data) CommuneCentre(code string) (lat, lon float64, ok bool) {
	i, ok := d.index(code)
	if !ok {
		return 0, 0, false
	}
	return d.communes[i].lat, d.communes[i].lon, true
}

// SectorExists reports whether a sector code exists (domain.Places).
func (d *Data) SectorExists(code string) bool { _, ok := d.Sectors[code]; return ok }

// DepartmentExists reports whether a département code exists.
func (d *Data) DepartmentExists(code string) bool { _, ok := d.Department(code); return ok }

// RegionExists reports whether an INSEE région code has a département.
func (d *Data) RegionExists(code string) bool {
	for _, dep := range d.Departments {
		if code != "" && dep.Region == code {
			return true
		}
	}
	return false
}
