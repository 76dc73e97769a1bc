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
	var da Result
	for b.Loop() {
		var fc Result
		da, fc = Run(m), FirstCome(m)
		_, _ = FiguresOf(m, da), FiguresOf(m, fc)
	}
	b.StopTimer()
	if err := Stable(m, da); err != nil { // what was timed is right
		b.Fatal(err)
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

// TestCampaignRoundStable checks a market of the benchmark's shape at a
// département campaign's size: stable and within seats (the benchmarks
// check the national one).
func TestCampaignRoundStable(t *testing.T) {
	m := bigMarket(30_000, 5_000, 2)
	r := Run(m)
	if err := Stable(m, r); err != nil {
		t.Fatal(err)
	}
	f := FiguresOf(m, r)
	if f.Placed == 0 || f.SeatsLeft < 0 {
		t.Fatalf("figures %+v", f)
	}
}
