package convdoc

import "testing"

// BenchmarkPrepareFonts is what the first document of a process pays
// once: both fonts' glyph tables, widths, ToUnicode CMaps and objects.
func BenchmarkPrepareFonts(b *testing.B) {
	for b.Loop() {
		prepareFonts()
	}
}
