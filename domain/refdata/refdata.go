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
	"strconv"
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
type Data struct {
	Communes    map[string]Commune
	Departments map[string]Department
	Sectors     map[string]Sector
	postal      postalIndex
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
func (d *Data) Commune(code string) (Commune, bool) { c, ok := d.Communes[code]; return c, ok }

// Sector looks up a sector code.
func (d *Data) Sector(code string) (Sector, bool) { s, ok := d.Sectors[code]; return s, ok }

// Department looks up a département code.
func (d *Data) Department(code string) (Department, bool) {
	x, ok := d.Departments[code]
	return x, ok
}

func parse() (*Data, error) {
	d := &Data{Communes: map[string]Commune{}, Departments: map[string]Department{}, Sectors: map[string]Sector{}}
	rows, err := records(communesCSV, 10)
	if err != nil {
		return nil, fmt.Errorf("communes: %w", err)
	}
	for _, r := range rows {
		lat, err1 := strconv.ParseFloat(r[5], 64)
		lon, err2 := strconv.ParseFloat(r[6], 64)
		pop, _ := strconv.Atoi(r[7])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("communes: bad coordinates for %s", r[0])
		}
		d.Communes[r[0]] = Commune{Code: r[0], Name: r[1], Department: r[2], Region: r[3], PostalCode: r[4], Lat: lat, Lon: lon, Population: pop}
	}
	rows, err = records(departementsCSV, 6)
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
	c, ok := d.Communes[code]
	return c.Department, ok
}

// CommuneCentre returns the coordinates of a commune's centre
// (domain.Places).
func (d *Data) CommuneCentre(code string) (lat, lon float64, ok bool) {
	c, ok := d.Communes[code]
	return c.Lat, c.Lon, ok
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
