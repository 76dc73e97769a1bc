package domain_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"passerelle/domain"
)

// haversineKM is the distance as first written, squares by math.Pow.
func haversineKM(lat1, lon1, lat2, lon2 float64) float64 {
	const earthKM = 6371.0088
	rad := math.Pi / 180
	dLat, dLon := (lat2-lat1)*rad, (lon2-lon1)*rad
	h := math.Pow(math.Sin(dLat/2), 2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Pow(math.Sin(dLon/2), 2)
	return 2 * earthKM * math.Asin(math.Sqrt(min(1, h)))
}

// randomPlace is a point in metropolitan France or overseas, or near one
// given: most distances the desk measures are a few kilometres.
func randomPlace(r *rand.Rand, near domain.Point) domain.Point {
	switch r.IntN(4) {
	case 0:
		return domain.PointAt(41+10*r.Float64(), -5+15*r.Float64())
	case 1:
		return domain.PointAt(-22+40*r.Float64(), -62+118*r.Float64())
	case 2: // the same place
		return domain.PointAt(near.Lat, near.Lon)
	default:
		return domain.PointAt(near.Lat+(r.Float64()-0.5)*0.6, near.Lon+(r.Float64()-0.5)*0.8)
	}
}

func TestDistanceKMUnchanged(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	p := domain.PointAt(48.8566, 2.3522)
	for range 200_000 {
		q := randomPlace(r, p)
		want := haversineKM(p.Lat, p.Lon, q.Lat, q.Lon)
		if got := domain.DistanceKM(p.Lat, p.Lon, q.Lat, q.Lon); got != want {
			t.Fatalf("DistanceKM(%v, %v, %v, %v) = %v, want %v", p.Lat, p.Lon, q.Lat, q.Lon, got, want)
		}
		if got := p.DistanceKM(q); got != want {
			t.Fatalf("%v.DistanceKM(%v) = %v, want %v", p, q, got, want)
		}
		p = q
	}
}

// AtMost and Within, of a Distance and of a Way, answer as comparing the
// distance in kilometres would, for radii just below, at and just above it, for the whole
// kilometres it looks up, and for none at all (negative, infinite, NaN).
func TestDistanceAtMost(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	in, out := 0, 0
	for i := range 200_000 {
		c := domain.PointAt(41+10*r.Float64(), -5+15*r.Float64())
		q := randomPlace(r, c)
		if i%10 == 0 { // anywhere on the globe, antipodes and poles included
			q = domain.PointAt(-90+180*r.Float64(), -180+360*r.Float64())
		}
		d, w := c.To(q), c.Way(q)
		km := d.KM()
		if want := domain.DistanceKM(c.Lat, c.Lon, q.Lat, q.Lon); km != want || w.KM() != want {
			t.Fatalf("%v to %v: %v km, the way %v km, want %v", c, q, km, w.KM(), want)
		}
		radii := []float64{km, math.Nextafter(km, 0), math.Nextafter(km, math.Inf(1)), km * (1 - 1e-10), km * (1 + 1e-10),
			km * (1 - 1e-7), km * (1 + 1e-7), km * (1 - 1e-5), km * (1 + 1e-5), math.Floor(km), math.Ceil(km), 0, 1e-9,
			float64(r.IntN(120)), 30_000, -1, math.Inf(1), math.NaN()}
		for _, radius := range radii {
			ok := d.AtMost(radius)
			if ok != (km <= radius) {
				t.Fatalf("%v to %v is %v km: at most %v km says %v", c, q, km, radius, ok)
			}
			reach := domain.ReachOf(radius)
			if d.Within(reach) != ok || !(reach.KM() == radius || math.IsNaN(radius)) {
				t.Fatalf("%v to %v is %v km: within a reach of %v km says %v, at most %v", c, q, km, reach.KM(), d.Within(reach), ok)
			}
			if w.Within(reach) != ok || w.AtMost(radius) != ok {
				t.Fatalf("%v to %v is %v km: the way within a reach of %v km says %v, at most %v", c, q, km, reach.KM(), w.Within(reach), ok)
			}
			if ok {
				in++
			} else {
				out++
			}
		}
	}
	if in == 0 || out == 0 {
		t.Fatalf("%d distances within, %d beyond: both must be tried", in, out)
	}
}

func BenchmarkDistance(b *testing.B) {
	p, q := domain.PointAt(48.8566, 2.3522), domain.PointAt(48.79, 2.455)
	b.Run("haversine", func(b *testing.B) {
		s := 0.0
		for b.Loop() {
			s += haversineKM(p.Lat, p.Lon, q.Lat, q.Lon)
		}
		_ = s
	})
	b.Run("point", func(b *testing.B) {
		s := 0.0
		for b.Loop() {
			s += p.DistanceKM(q)
		}
		_ = s
	})
	b.Run("at-most", func(b *testing.B) {
		n := 0
		for b.Loop() {
			if p.To(q).AtMost(30) {
				n++
			}
		}
		_ = n
	})
	b.Run("way-within", func(b *testing.B) {
		n, reach := 0, domain.ReachOf(30)
		for b.Loop() {
			if p.Way(q).Within(reach) {
				n++
			}
		}
		_ = n
	})
}
