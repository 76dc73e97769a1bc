package convdoc

import (
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"math"
	"strconv"
	"time"
	"unicode/utf16"

	"golang.org/x/text/unicode/norm"

	"passerelle/domain"
)

// sum2 is the hex SHA-256 of pdf-2's document of t, resumed after the
// fonts' bytes.
func sum2(t domain.ConventionTerms) string {
	fs := fonts()
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(fs.sumState); err != nil {
		panic("convdoc: " + err.Error())
	}
	h.Write(tail(fs, contentOf(t)))
	return hex.EncodeToString(h.Sum(nil))
}

// The objects after the fonts': the catalog, the page tree, the
// information dictionary, then each page and its content stream.
const (
	catalogObj = prefixObjects + 1 + iota
	pagesObj
	infoObj
	firstPageObj
)

// tail is the part of the file after the fonts' objects: the pages, the
// cross-reference table and the trailer.
func tail(fs *fontSet, doc document) []byte {
	l := newLayout(fs)
	l.write(doc)
	w := &objWriter{buf: make([]byte, 0, len(l.content)+2048), base: len(fs.prefix), offsets: append(make([]int, 0, firstPageObj+2*len(l.pages)), fs.offsets...)}
	pages := strconv.Itoa(pagesObj) + " 0 R"
	w.object(catalogObj, "<< /Type /Catalog /Pages "+pages+" /Lang (fr) >>")
	kids := make([]byte, 0, 12*len(l.pages))
	for i := range l.pages {
		kids = strconv.AppendInt(kids, int64(firstPageObj+2*i), 10)
		kids = append(kids, " 0 R "...)
	}
	w.object(pagesObj, "<< /Type /Pages /Kids [ "+string(kids)+"] /Count "+strconv.Itoa(len(l.pages))+
		" /MediaBox [0 0 595.28 841.89] /Resources "+strconv.Itoa(resourcesObj)+" 0 R >>")
	date := pdfDate(doc.created)
	w.object(infoObj, "<< /Title "+pdfText("Convention de stage d’observation "+doc.id)+" /Producer (Passerelle "+VersionPDF2+
		") /CreationDate "+date+" /ModDate "+date+" >>")
	var foot []byte
	for i, start := range l.pages {
		end := len(l.content)
		if i+1 < len(l.pages) {
			end = l.pages[i+1]
		}
		n := firstPageObj + 2*i
		w.object(n, "<< /Type /Page /Parent "+pages+" /Contents "+strconv.Itoa(n+1)+" 0 R >>")
		foot = l.footer(foot[:0], doc, i+1)
		w.stream(n+1, "", l.content[start:end], foot)
	}
	w.trailer()
	return w.buf
}

func pdfDate(t time.Time) string { return "(D:" + t.Format("20060102150405") + "Z)" }

// pdfText is a text string: UTF-16BE, its byte order mark first, in hex.
func pdfText(s string) string {
	b := []byte("<FEFF")
	for _, c := range utf16.Encode([]rune(s)) {
		b = appendHex16(b, c)
	}
	return string(append(b, '>'))
}

const hexDigits = "0123456789ABCDEF"

func appendHex16(b []byte, v uint16) []byte {
	return append(b, hexDigits[v>>12], hexDigits[v>>8&15], hexDigits[v>>4&15], hexDigits[v&15])
}

// objWriter writes numbered objects and, last, the cross-reference table
// of all of them. base is the length of the bytes before buf.
type objWriter struct {
	buf     []byte
	base    int
	offsets []int // by object number - 1
}

func (w *objWriter) begin(n int) {
	if n != len(w.offsets)+1 {
		panic("convdoc: object " + strconv.Itoa(n) + " out of order") // a bug of this package
	}
	w.offsets = append(w.offsets, w.base+len(w.buf))
	w.buf = strconv.AppendInt(w.buf, int64(n), 10)
	w.buf = append(w.buf, " 0 obj\n"...)
}

func (w *objWriter) object(n int, dict string) {
	w.begin(n)
	w.buf = append(w.buf, dict...)
	w.buf = append(w.buf, "\nendobj\n"...)
}

// stream writes a stream object of the parts of data, uncompressed;
// extra are more entries of its dictionary.
func (w *objWriter) stream(n int, extra string, data ...[]byte) {
	w.begin(n)
	size := 0
	for _, d := range data {
		size += len(d)
	}
	w.buf = append(w.buf, "<< /Length "...)
	w.buf = strconv.AppendInt(w.buf, int64(size), 10)
	if extra != "" {
		w.buf = append(append(w.buf, ' '), extra...)
	}
	w.buf = append(w.buf, " >>\nstream\n"...)
	for _, d := range data {
		w.buf = append(w.buf, d...)
	}
	w.buf = append(w.buf, "\nendstream\nendobj\n"...)
}

func (w *objWriter) trailer() {
	xref := w.base + len(w.buf)
	size := strconv.Itoa(len(w.offsets) + 1)
	w.buf = append(w.buf, "xref\n0 "+size+"\n0000000000 65535 f \n"...)
	for _, off := range w.offsets {
		w.buf = append(w.buf, zeros[:10-digits(off)]...)
		w.buf = strconv.AppendInt(w.buf, int64(off), 10)
		w.buf = append(w.buf, " 00000 n \n"...)
	}
	w.buf = append(w.buf, "trailer\n<< /Size "+size+" /Root "+strconv.Itoa(catalogObj)+" 0 R /Info "+strconv.Itoa(infoObj)+" 0 R >>\nstartxref\n"...)
	w.buf = strconv.AppendInt(w.buf, int64(xref), 10)
	w.buf = append(w.buf, "\n%%EOF\n"...)
}

const zeros = "0000000000"

func digits(n int) int {
	d := 1
	for ; n >= 10; n /= 10 {
		d++
	}
	return d
}

// The layout, in millimetres from the page's top left corner, as pdf-1
// had it (fpdf's cells: text 1 mm inside, baseline at mid-height plus
// 0.3 of the font size, rules 0.2 mm wide). Coordinates are written
// rounded to 0.01 pt. No expression computes a*b+c: arm64 and others
// fuse it into one instruction (FMA) whose rounding differs from amd64's,
// which could move a coordinate across a rounding boundary and change the
// bytes; float64(a*b)+c keeps them apart.
const (
	pt         = 72 / 25.4 // points per millimetre
	cellMargin = 1.0
	breakAt    = PageHeight - margin // a cell that would end below starts a new page
)

// layout writes the pages' content streams one after the other.
type layout struct {
	fs      *fontSet
	content []byte
	pages   []int // where each page's stream starts in content
	x, y    float64
	face    *face
	size    float64 // points
	glyphs  []glyph // shape's, reused: a line is written before the next is shaped
}

func newLayout(fs *fontSet) *layout {
	l := &layout{fs: fs, content: make([]byte, 0, 8192)}
	l.addPage()
	return l
}

func (l *layout) addPage() {
	l.pages = append(l.pages, len(l.content))
	l.content = append(l.content, "0.57 w 0 G 0 g\n"...)
	l.x, l.y = margin, margin
}

func (l *layout) setFont(f *face, size float64) { l.face, l.size = f, size }

func (l *layout) ln(h float64) { l.x, l.y = margin, l.y+h }

// write lays the document out as pdf-1 did.
func (l *layout) write(doc document) {
	l.setFont(l.fs.bold, 16)
	l.multiCell(8, doc.title, false, 'C')
	l.setFont(l.fs.regular, 10)
	l.multiCell(5, doc.subtitle, false, 'C')
	l.ln(4)
	for _, s := range doc.sections {
		l.ln(2)
		l.setFont(l.fs.bold, 12)
		l.multiCell(7, s.heading, true, 'L')
		l.ln(1)
		for _, f := range s.fields {
			l.setFont(l.fs.bold, 10)
			l.breakPage(5.5)
			l.cell(52, 5.5, l.shape(f.label), false, 'L')
			l.x += 52
			l.setFont(l.fs.regular, 10)
			l.multiCell(5.5, f.value, false, 'L')
		}
	}
	l.setFont(l.fs.regular, 9)
	l.multiCell(4.5, doc.notice, false, 'L')
	l.ln(2)
	for _, name := range doc.signers {
		l.setFont(l.fs.bold, 10)
		l.breakPage(12)
		l.box(80, 12)
		l.cell(80, 12, l.shape(name), false, 'L')
		l.x += 80
		l.setFont(l.fs.regular, 9)
		l.box(PageWidth-margin-l.x, 12)
		l.cell(PageWidth-margin-l.x, 12, l.shape("Nom, date et signature :"), false, 'L')
		l.ln(12)
	}
}

// footer is b and the footer of page n, written once the number of
// pages is known.
func (l *layout) footer(b []byte, doc document, n int) []byte {
	content := l.content
	l.content = b
	l.setFont(l.fs.regular, 8)
	l.x, l.y = margin, PageHeight-margin+4
	l.cell(PageWidth-2*margin, 4, l.shape(doc.footer(n, len(l.pages))), false, 'C')
	b, l.content = l.content, content
	return b
}

// breakPage starts a new page if a cell of height h does not fit.
func (l *layout) breakPage(h float64) {
	if l.y+h > breakAt {
		x := l.x
		l.addPage()
		l.x = x
	}
}

// multiCell writes s in lines of height h from x to the right margin,
// wrapped at spaces (within a word longer than a line), breaking pages;
// underline draws a rule under the last line. The cursor ends at the
// left margin under the last line.
func (l *layout) multiCell(h float64, s string, underline bool, align byte) {
	w := PageWidth - margin - l.x
	lines := wrap(l.face, l.shape(s), int((w-2*cellMargin)*pt*1000/l.size))
	for i, line := range lines {
		l.breakPage(h)
		l.cell(w, h, line, underline && i == len(lines)-1, align)
		l.y += h
	}
	l.x = margin
}

// cell writes one line of glyphs in the cell of width w and height h at
// the cursor.
func (l *layout) cell(w, h float64, line []glyph, underline bool, align byte) {
	if underline {
		l.content = num(num(l.content, l.x*pt), (PageHeight-l.y-h)*pt)
		l.content = append(l.content, " m "...)
		l.content = num(num(l.content, (l.x+w)*pt), (PageHeight-l.y-h)*pt)
		l.content = append(l.content, " l S\n"...)
	}
	if len(line) == 0 {
		return
	}
	x := l.x + cellMargin
	if align == 'C' {
		x = l.x + (w-float64(width(l.face, line))*l.size/1000/pt)/2
	}
	l.content = append(l.content, "BT /"...)
	l.content = append(l.content, l.face.resource...)
	l.content = num(l.content, l.size)
	l.content = append(l.content, " Tf"...)
	l.content = num(num(l.content, x*pt), (PageHeight-(l.y+h/2+0.3*l.size/pt))*pt)
	l.content = append(l.content, " Td "...)
	l.content = showGlyphs(l.content, line)
	l.content = append(l.content, "ET\n"...)
}

// box strokes the rectangle of width w and height h at the cursor.
func (l *layout) box(w, h float64) {
	l.content = num(num(l.content, l.x*pt), (PageHeight-l.y)*pt)
	l.content = num(num(l.content, w*pt), -h*pt)
	l.content = append(l.content, " re S\n"...)
}

// showGlyphs writes the glyphs as Tj operators; a glyph that is not its
// rune's own is marked with the rune as its actual text.
func showGlyphs(b []byte, line []glyph) []byte {
	for i := 0; i < len(line); {
		if line[i].actual {
			b = append(b, "/Span << /ActualText "...)
			b = append(b, pdfText(string(line[i].r))...)
			b = append(b, " >> BDC <"...)
			b = append(appendHex16(b, line[i].id), "> Tj EMC "...)
			i++
			continue
		}
		b = append(b, '<')
		for ; i < len(line) && !line[i].actual; i++ {
			b = appendHex16(b, line[i].id)
		}
		b = append(b, "> Tj "...)
	}
	return b
}

// num appends a space and v with two decimals, rounded half away from
// zero.
func num(b []byte, v float64) []byte {
	b = append(b, ' ')
	c := int64(math.Round(v * 100))
	if c < 0 {
		b, c = append(b, '-'), -c
	}
	b = strconv.AppendInt(b, c/100, 10)
	return append(b, '.', byte('0'+c/10%10), byte('0'+c%10))
}

// shape is s's glyphs in the current font, s composed first (an accent
// typed as a combining mark is drawn as the accented letter); control
// characters are spaces but for the line feed.
func (l *layout) shape(s string) []glyph {
	s = norm.NFC.String(s)
	gs := l.glyphs[:0]
	for _, r := range s {
		switch {
		case r == '\r':
			continue
		case r == '\n':
		case r < ' ' || r == 0x7f:
			r = ' '
		}
		gs = append(gs, l.face.glyph(r))
	}
	l.glyphs = gs
	return gs
}

func width(f *face, gs []glyph) int {
	w := 0
	for _, g := range gs {
		w += f.widths[g.id]
	}
	return w
}

// wrap cuts gs into lines no wider than limit (in thousandths of the
// font size): at the last space that fits, or inside a word longer than a
// line; a line feed ends a line.
func wrap(f *face, gs []glyph, limit int) [][]glyph {
	var lines [][]glyph
	start, space, w := 0, -1, 0
	for i := 0; i < len(gs); i++ {
		switch gs[i].r {
		case '\n':
			lines = append(lines, gs[start:i])
			start, space, w = i+1, -1, 0
			continue
		case ' ':
			space = i
		}
		w += f.widths[gs[i].id]
		if w <= limit || i == start {
			continue
		}
		if space > start {
			lines = append(lines, gs[start:space])
			start, i = space+1, space
		} else {
			lines = append(lines, gs[start:i])
			start, i = i, i-1
		}
		space, w = -1, 0
	}
	return append(lines, gs[start:])
}
