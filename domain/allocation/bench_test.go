package allocation

import (
	"runtime"
	"testing"
)

// A round computes both rules and their figures. The market is drawn once,
// outside the timing; -benchmem then counts what a round allocates
// beyond it, and market_MB reports the market's own size.
func benchmarkRound(b *testing.B, pupils, offers int) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m := bigMarket(pupils, offers, 1)
	runtime.GC()
	runtime.ReadMemStats(&after)
	choices := 0
	for _, p := range m.Pupils {
		choices += len(p.Choices)
	}
	b.ResetTimer()
	b.ReportAllocs()
	for b.Loop() {
		da, fc := Run(m), FirstCome(m)
		_, _ = FiguresOf(m, da), FiguresOf(m, fc)
	}
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/1e6, "market_MB")
	b.ReportMetric(float64(len(m.Slots)), "slots")
	b.ReportMetric(float64(choices), "choices")
}

func BenchmarkRound30k(b *testing.B)      { benchmarkRound(b, 30_000, 5_000) }
func BenchmarkRoundNational(b *testing.B) { benchmarkRound(b, 560_000, 67_000) }

func BenchmarkRunNational(b *testing.B) {
	m := bigMarket(560_000, 67_000, 1)
	b.ResetTimer()
	b.ReportAllocs()
	for b.Loop() {
		Run(m)
	}
}

// TestNationalRoundStable checks the benchmark's market: a round at the
// national size is stable and within seats.
func TestNationalRoundStable(t *testing.T) {
	m := bigMarket(560_000, 67_000, 1)
	r := Run(m)
	if err := Stable(m, r); err != nil {
		t.Fatal(err)
	}
	f := FiguresOf(m, r)
	if f.Placed == 0 || f.SeatsLeft < 0 {
		t.Fatalf("figures %+v", f)
	}
}
