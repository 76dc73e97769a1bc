package projections_test

import (
	"slices"
	"testing"

	"passerelle/projections"
)

func TestWordsLeaveOutCommonWords(t *testing.T) {
	for _, tc := range []struct {
		text string
		want []string
	}{
		{"Stage de cuisine à la Boulangerie", []string{"stage", "cuisine", "boulangerie"}},
		{"L'accueil d'un public, jusqu'à 17 h", []string{"accueil", "public", "17"}},
		// words that also name a thing stay
		{"Régie son et lumière, Grand Est, pas de danse", []string{"regie", "son", "lumiere", "grand", "est", "pas", "danse"}},
		{"de la pour", nil},
	} {
		if got := projections.Words(tc.text); !slices.Equal(got, tc.want) {
			t.Errorf("Words(%q) = %q, want %q", tc.text, got, tc.want)
		}
	}
}
