package desk

import "slices"

// best keeps the k best of the values it is given, best first (cmp < 0:
// better), and counts them all: a page of a ranking without sorting what
// lies beyond it. Past a few pages it keeps everything and sorts once.
type best[T any] struct {
	k     int
	cmp   func(a, b T) int
	items []T
	seen  int
}

// bestSorted is how far best keeps a sorted page; further, it sorts all.
const bestSorted = 500

func newBest[T any](k int, cmp func(a, b T) int) *best[T] {
	return &best[T]{k: max(k, 0), cmp: cmp}
}

func (b *best[T]) add(x T) {
	b.seen++
	if b.k > bestSorted {
		b.items = append(b.items, x)
		return
	}
	if b.k == 0 || len(b.items) == b.k && b.cmp(x, b.items[b.k-1]) >= 0 {
		return
	}
	i, _ := slices.BinarySearchFunc(b.items, x, b.cmp)
	b.items = slices.Insert(b.items, i, x)
	if len(b.items) > b.k {
		b.items = b.items[:b.k]
	}
}

// last is the worst of the best k once k were given (full), while best
// keeps them sorted: a value not better than it is left out.
func (b *best[T]) last() (last T, full bool) {
	if b.k == 0 || b.k > bestSorted || len(b.items) < b.k {
		return last, false
	}
	return b.items[b.k-1], true
}

// top is the best k, best first.
func (b *best[T]) top() []T {
	if b.k > bestSorted {
		slices.SortFunc(b.items, b.cmp)
		b.items = b.items[:min(b.k, len(b.items))]
	}
	return b.items
}
