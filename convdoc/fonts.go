package convdoc

import (
	"crypto/sha256"
	"encoding"
	"fmt"
	"strconv"
	"sync"
	"unicode/utf16"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/sfnt"
	"golang.org/x/image/math/fixed"
)

// pdf-2's fonts are Go's (BSD licence), regular and bold, which cover
// WGL4: Latin-1 and Latin Extended-A (é è à ç œ « » ’, Ł ř ş ő…), Greek,
// Cyrillic, and typographic punctuation. Text is composed (NFC) first.
// What they lack (Latin Extended-B and Additional such as ǅ or ẞ,
// combining marks left after composition, CJK, Arabic, emoji) is drawn
// as the fonts' box, as pdf-1 did, but read back as itself by extraction
// and search (ActualText), and it counts in the hash like any text; the
// thin and narrow no-break spaces and hyphens French uses are drawn with
// the space, no-break space or hyphen they stand for.

// face is one of pdf-2's fonts, embedded whole: a glyph's CID is its
// glyph index (Identity-H, CIDToGIDMap /Identity), so a document only
// looks glyphs up and writes their indices.
type face struct {
	resource string   // its name in the pages' resources: /F1
	glyphs   []uint16 // glyph index by rune (0: not in the font)
	widths   []int    // advance by glyph index, in thousandths of the font size
}

// glyph is the glyph of rune r, and whether it stands for r without
// being r's own (a substitute or .notdef): the reader is then told r.
type glyph struct {
	id     uint16
	r      rune
	actual bool
}

// The runes the fonts lack but French text uses: drawn as the glyph of
// the rune they map to, extracted as themselves.
var substitutes = map[rune]rune{
	'\u2009': ' ', '\u202f': '\u00a0', '\u2007': '\u00a0', '\u2008': ' ', '\u200a': ' ', // thin and narrow spaces
	'\u2010': '-', '\u2011': '-', // hyphen, non-breaking hyphen
}

func (f *face) glyph(r rune) glyph {
	if g := f.lookup(r); g != 0 {
		return glyph{id: g, r: r}
	}
	if s, ok := substitutes[r]; ok {
		return glyph{id: f.lookup(s), r: r, actual: true}
	}
	return glyph{id: 0, r: r, actual: true} // .notdef: a box
}

func (f *face) lookup(r rune) uint16 {
	if r >= 0 && int(r) < len(f.glyphs) {
		return f.glyphs[r]
	}
	return 0
}

// fontSet is what every pdf-2 document shares: the fonts' objects (the
// file's first bytes, the same in every document) and the SHA-256 state
// after them.
type fontSet struct {
	regular, bold *face
	prefix        []byte
	offsets       []int // of the prefix's objects 1..prefixObjects
	sumState      []byte
}

// The prefix's objects: five per font (file, descriptor, ToUnicode,
// CIDFont, Type0 font), then the pages' resources.
const (
	resourcesObj  = 11
	prefixObjects = 11
)

var fonts = sync.OnceValue(prepareFonts)

func prepareFonts() *fontSet {
	fs := &fontSet{}
	w := &objWriter{buf: []byte("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")}
	fs.regular = embed(w, 1, "F1", "Go-Regular", goregular.TTF)
	fs.bold = embed(w, 6, "F2", "Go-Bold", gobold.TTF)
	w.object(resourcesObj, "<< /Font << /F1 5 0 R /F2 10 0 R >> /ProcSet [/PDF /Text] >>")
	fs.prefix, fs.offsets = w.buf, w.offsets
	h := sha256.New()
	h.Write(fs.prefix)
	state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		panic("convdoc: " + err.Error())
	}
	fs.sumState = state
	return fs
}

// embed writes the font's five objects from number first on and returns
// its face. The fonts are fixed: an error is a bug of this package.
func embed(w *objWriter, first int, resource, name string, ttf []byte) *face {
	f, err := sfnt.Parse(ttf)
	if err != nil {
		panic("convdoc: " + err.Error())
	}
	var b sfnt.Buffer
	em := int(f.UnitsPerEm())
	ppem := fixed.Int26_6(em) // so that the metrics below are in font units
	fc := &face{resource: resource, widths: make([]int, f.NumGlyphs())}
	runeOf := make([]rune, f.NumGlyphs())
	for r := rune(0); r <= 0xffff; r++ {
		g, err := f.GlyphIndex(&b, r)
		if err != nil || g == 0 {
			continue
		}
		for len(fc.glyphs) <= int(r) {
			fc.glyphs = append(fc.glyphs, 0)
		}
		fc.glyphs[r] = uint16(g)
		if runeOf[g] == 0 {
			runeOf[g] = r
		}
	}
	for g := range fc.widths {
		adv, err := f.GlyphAdvance(&b, sfnt.GlyphIndex(g), ppem, font.HintingNone)
		if err != nil {
			panic("convdoc: " + err.Error())
		}
		fc.widths[g] = thousandths(int(adv), em)
	}
	m, err := f.Metrics(&b, ppem, font.HintingNone)
	if err != nil {
		panic("convdoc: " + err.Error())
	}
	box, err := f.Bounds(&b, ppem, font.HintingNone)
	if err != nil {
		panic("convdoc: " + err.Error())
	}
	w.stream(first, fmt.Sprintf("/Length1 %d", len(ttf)), ttf)
	w.object(first+1, fmt.Sprintf("<< /Type /FontDescriptor /FontName /%s /Flags 32 /FontBBox [%d %d %d %d] /ItalicAngle 0 /Ascent %d /Descent %d /CapHeight %d /StemV 80 /FontFile2 %d 0 R >>",
		name, thousandths(int(box.Min.X), em), -thousandths(int(box.Max.Y), em), thousandths(int(box.Max.X), em), -thousandths(int(box.Min.Y), em),
		thousandths(int(m.Ascent), em), -thousandths(int(m.Descent), em), thousandths(int(m.CapHeight), em), first))
	w.stream(first+2, "", toUnicode(runeOf))
	w.object(first+3, fmt.Sprintf("<< /Type /Font /Subtype /CIDFontType2 /BaseFont /%s /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> /FontDescriptor %d 0 R /CIDToGIDMap /Identity /W [0 [%s]] >>",
		name, first+1, ints(fc.widths)))
	w.object(first+4, fmt.Sprintf("<< /Type /Font /Subtype /Type0 /BaseFont /%s /Encoding /Identity-H /DescendantFonts [%d 0 R] /ToUnicode %d 0 R >>",
		name, first+3, first+2))
	return fc
}

// thousandths converts font units to thousandths of the em, rounded.
func thousandths(units, em int) int {
	if units < 0 {
		return -thousandths(-units, em)
	}
	return (units*1000 + em/2) / em
}

func ints(v []int) string {
	var b []byte
	for i, n := range v {
		if i > 0 {
			b = append(b, ' ')
		}
		b = strconv.AppendInt(b, int64(n), 10)
	}
	return string(b)
}

// toUnicode is the CMap telling readers which rune each glyph is, for
// text extraction and search.
func toUnicode(runeOf []rune) []byte {
	var chars []string
	for g, r := range runeOf {
		if r == 0 {
			continue
		}
		u := ""
		for _, c := range utf16.Encode([]rune{r}) {
			u += fmt.Sprintf("%04X", c)
		}
		chars = append(chars, fmt.Sprintf("<%04X> <%s>\n", g, u))
	}
	b := []byte("/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n" +
		"/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n" +
		"/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n" +
		"1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n")
	for len(chars) > 0 { // at most 100 entries a block
		n := min(len(chars), 100)
		b = fmt.Appendf(b, "%d beginbfchar\n", n)
		for _, c := range chars[:n] {
			b = append(b, c...)
		}
		b = append(b, "endbfchar\n"...)
		chars = chars[n:]
	}
	return append(b, "endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n"...)
}
