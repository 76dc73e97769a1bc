package dashboard

import (
	"fmt"
	"html"
	"math"
	"slices"
	"strings"

	"passerelle/domain/refdata"
)

// The map of France is drawn from the communes' coordinates alone: the
// ground is cut into square cells, each cell belongs to the département of
// the nearest commune (none when no commune is within reach: the sea, or
// abroad), and each département is drawn as the outline of its cells. One
// frame for metropolitan France, one zoomed on Île-de-France (the inner
// départements are a few cells wide at the national scale) and one for
// each overseas département.

// frame is one part of the map: which communes it is drawn from, which
// départements it shows, and where on the canvas.
type frame struct {
	label      string                     // "": no box around it
	communes   func(refdata.Commune) bool // the communes that own cells
	shows      func(dep string) bool      // the départements drawn
	x, y, w, h float64                    // box on the canvas
	cellKM     float64                    // side of a cell
	reachKM    float64                    // a cell further from every commune is not land
	codes      bool                       // label the départements with their codes
}

const (
	mapWidth  = 1000
	mapHeight = 820
)

func frames() []frame {
	overseas := func(code string) func(refdata.Commune) bool {
		return func(c refdata.Commune) bool { return c.Department == code }
	}
	is := func(code string) func(string) bool { return func(d string) bool { return d == code } }
	metro := func(c refdata.Commune) bool { return !strings.HasPrefix(c.Department, "97") }
	return []frame{
		{communes: metro, shows: func(d string) bool { return !strings.HasPrefix(d, "97") },
			x: 262, y: 0, w: 738, h: mapHeight, cellKM: 4, reachKM: 8},
		{label: "Île-de-France", communes: func(c refdata.Commune) bool {
			return metro(c) && c.Lat > 47.9 && c.Lat < 49.5 && c.Lon > 1.2 && c.Lon < 3.8
		}, shows: func(d string) bool {
			return slices.Contains([]string{"75", "77", "78", "91", "92", "93", "94", "95"}, d)
		},
			x: 5, y: 5, w: 245, h: 225, cellKM: 1, reachKM: 4, codes: true},
		{label: "Guadeloupe", communes: overseas("971"), shows: is("971"), x: 5, y: 262, w: 112, h: 100, cellKM: 1, reachKM: 7},
		{label: "Martinique", communes: overseas("972"), shows: is("972"), x: 138, y: 262, w: 112, h: 100, cellKM: 0.8, reachKM: 6},
		{label: "Guyane", communes: overseas("973"), shows: is("973"), x: 5, y: 400, w: 112, h: 100, cellKM: 6, reachKM: 60},
		{label: "La Réunion", communes: overseas("974"), shows: is("974"), x: 138, y: 400, w: 112, h: 100, cellKM: 1, reachKM: 8},
		{label: "Mayotte", communes: overseas("976"), shows: is("976"), x: 5, y: 538, w: 112, h: 100, cellKM: 0.5, reachKM: 4},
	}
}

// franceSVG draws the map: one <path class="dep" data-dep="CODE"> per
// département and frame, titled with its code and name, for the page to
// colour.
func franceSVG(d *refdata.Data) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" class="france">`, mapWidth, mapHeight)
	for _, f := range frames() {
		f.draw(&b, d)
	}
	b.WriteString("</svg>\n")
	return []byte(b.String())
}

// point is a commune projected to kilometres.
type point struct {
	x, y float64
	dep  string
}

// grid is the cells of a frame, each holding its département ("": none).
type grid struct {
	nx, ny int
	owner  []string
}

func (g *grid) at(i, j int) string {
	if i < 0 || j < 0 || i >= g.nx || j >= g.ny {
		return ""
	}
	return g.owner[j*g.nx+i]
}

func (f frame) draw(b *strings.Builder, d *refdata.Data) {
	var pts []point
	for c := range d.Communes() {
		if f.communes(c) {
			pts = append(pts, point{x: c.Lon, y: c.Lat, dep: c.Department})
		}
	}
	if len(pts) == 0 {
		return
	}
	g, minX, maxY, scale := f.cells(pts)
	// cells to the canvas: centred in the box
	s := min(f.w/float64(g.nx), f.h/float64(g.ny))
	ox, oy := f.x+(f.w-s*float64(g.nx))/2, f.y+(f.h-s*float64(g.ny))/2
	if f.label != "" {
		fmt.Fprintf(b, `<rect class="frame" x="%g" y="%g" width="%g" height="%g"/>`, f.x-2, f.y-2, f.w+4, f.h+4)
		fmt.Fprintf(b, `<text class="frame-label" x="%g" y="%g">%s</text>`, f.x, f.y+f.h+22, html.EscapeString(f.label))
	}
	fmt.Fprintf(b, `<g transform="translate(%.1f %.1f) scale(%.4f)">`, ox, oy, s)
	var deps []string
	for _, o := range g.owner {
		if o != "" && f.shows(o) && !slices.Contains(deps, o) {
			deps = append(deps, o)
		}
	}
	slices.Sort(deps)
	for _, dep := range deps {
		title := dep
		if x, ok := d.Department(dep); ok {
			title += " " + x.Name
		}
		fmt.Fprintf(b, `<path class="dep" data-dep="%s" d="%s"><title>%s</title></path>`, dep, g.outline(dep), html.EscapeString(title))
	}
	if f.codes {
		for _, dep := range deps {
			x, ok := d.Department(dep)
			if !ok {
				continue
			}
			cx, cy := (x.Lon*scale-minX)/f.cellKM, (maxY-x.Lat*110.57)/f.cellKM
			fmt.Fprintf(b, `<text class="dep-code" x="%.1f" y="%.1f" font-size="%.1f">%s</text>`, cx, cy, 16/s, dep)
		}
	}
	b.WriteString("</g>")
}

// cells builds the frame's grid. It returns the grid, the projection's
// west and north edges in kilometres, and the kilometres per degree of
// longitude.
func (f frame) cells(pts []point) (g *grid, minX, maxY, scale float64) {
	var lat float64
	for _, p := range pts {
		lat += p.y
	}
	scale = 111.32 * math.Cos(lat/float64(len(pts))*math.Pi/180)
	minX, maxX, minY := math.Inf(1), math.Inf(-1), math.Inf(1)
	maxY = math.Inf(-1)
	for i := range pts {
		pts[i].x, pts[i].y = pts[i].x*scale, pts[i].y*110.57
		minX, maxX = min(minX, pts[i].x), max(maxX, pts[i].x)
		minY, maxY = min(minY, pts[i].y), max(maxY, pts[i].y)
	}
	pad := f.reachKM / 2
	minX, maxX, minY, maxY = minX-pad, maxX+pad, minY-pad, maxY+pad
	g = &grid{nx: int(math.Ceil((maxX - minX) / f.cellKM)), ny: int(math.Ceil((maxY - minY) / f.cellKM))}
	g.owner = make([]string, g.nx*g.ny)
	near := newBuckets(pts, f.reachKM)
	for j := range g.ny {
		for i := range g.nx {
			x, y := minX+(float64(i)+0.5)*f.cellKM, maxY-(float64(j)+0.5)*f.cellKM
			g.owner[j*g.nx+i] = near.nearest(x, y, 1)
		}
	}
	// a hole inside the land (a large commune far from its neighbours'
	// centres) is land too: it cannot be reached from the edge of the box
	outside := g.outside()
	for j := range g.ny {
		for i := range g.nx {
			if c := j*g.nx + i; g.owner[c] == "" && !outside[c] {
				g.owner[c] = near.nearest(minX+(float64(i)+0.5)*f.cellKM, maxY-(float64(j)+0.5)*f.cellKM, 4)
			}
		}
	}
	return g, minX, maxY, scale
}

// outside marks the empty cells reachable from the edge of the grid
// through empty cells.
func (g *grid) outside() []bool {
	out := make([]bool, len(g.owner))
	var stack []int
	push := func(i, j int) {
		if i < 0 || j < 0 || i >= g.nx || j >= g.ny {
			return
		}
		if c := j*g.nx + i; g.owner[c] == "" && !out[c] {
			out[c] = true
			stack = append(stack, c)
		}
	}
	for i := range g.nx {
		push(i, 0)
		push(i, g.ny-1)
	}
	for j := range g.ny {
		push(0, j)
		push(g.nx-1, j)
	}
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		i, j := c%g.nx, c/g.nx
		push(i-1, j)
		push(i+1, j)
		push(i, j-1)
		push(i, j+1)
	}
	return out
}

// buckets finds the nearest commune within a reach, by squares of the
// reach's side.
type buckets struct {
	side float64
	m    map[[2]int][]point
}

func newBuckets(pts []point, side float64) *buckets {
	b := &buckets{side: side, m: map[[2]int][]point{}}
	for _, p := range pts {
		k := b.key(p.x, p.y)
		b.m[k] = append(b.m[k], p)
	}
	return b
}

func (b *buckets) key(x, y float64) [2]int {
	return [2]int{int(math.Floor(x / b.side)), int(math.Floor(y / b.side))}
}

// nearest is the département of the nearest commune within reaches times
// the reach, "" when there is none.
func (b *buckets) nearest(x, y float64, reaches int) string {
	k := b.key(x, y)
	best, dep := math.Pow(float64(reaches)*b.side, 2), ""
	for di := -reaches; di <= reaches; di++ {
		for dj := -reaches; dj <= reaches; dj++ {
			for _, p := range b.m[[2]int{k[0] + di, k[1] + dj}] {
				if d := (p.x-x)*(p.x-x) + (p.y-y)*(p.y-y); d < best {
					best, dep = d, p.dep
				}
			}
		}
	}
	return dep
}

// edge is one side of a cell, from one corner to the next clockwise.
type edge struct{ from, to pt }

// boundary is the sides of dep's cells that border another département
// or nothing, each oriented clockwise around its cell.
func (g *grid) boundary(dep string) []edge {
	var out []edge
	for j := range g.ny {
		for i := range g.nx {
			if g.at(i, j) != dep {
				continue
			}
			if g.at(i, j-1) != dep {
				out = append(out, edge{pt{i, j}, pt{i + 1, j}})
			}
			if g.at(i+1, j) != dep {
				out = append(out, edge{pt{i + 1, j}, pt{i + 1, j + 1}})
			}
			if g.at(i, j+1) != dep {
				out = append(out, edge{pt{i + 1, j + 1}, pt{i, j + 1}})
			}
			if g.at(i-1, j) != dep {
				out = append(out, edge{pt{i, j + 1}, pt{i, j}})
			}
		}
	}
	return out
}

// outline is the SVG path of the cells of dep: its boundary chained into
// closed loops (clockwise around the land, so holes wind the other way
// and stay empty), with a move at each change of direction.
func (g *grid) outline(dep string) string {
	edges := g.boundary(dep)
	from := map[pt][]int{}
	for i, e := range edges {
		from[e.from] = append(from[e.from], i)
	}
	used := make([]bool, len(edges))
	next := func(p pt) (int, bool) {
		for _, e := range from[p] {
			if !used[e] {
				return e, true
			}
		}
		return 0, false
	}
	var b strings.Builder
	for start := range edges {
		if used[start] {
			continue
		}
		corner := edges[start].from
		fmt.Fprintf(&b, "M%d %d", corner.x, corner.y)
		for e, ok := start, true; ok; {
			used[e] = true
			to := edges[e].to
			if e, ok = next(to); ok && sameAxis(edges[e], edge{corner, to}) {
				continue
			}
			if to.x != corner.x {
				fmt.Fprintf(&b, "h%d", to.x-corner.x)
			} else {
				fmt.Fprintf(&b, "v%d", to.y-corner.y)
			}
			corner = to
		}
		b.WriteString("z")
	}
	return b.String()
}

// pt is a corner of the grid's cells.
type pt struct{ x, y int }

// sameAxis tells whether two edges are both horizontal or both vertical
// (a loop never turns back on itself, so then one goes on along the
// other).
func sameAxis(a, b edge) bool { return (a.from.x == a.to.x) == (b.from.x == b.to.x) }
