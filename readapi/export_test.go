package readapi

// SetSmallSet sets the size under which an index set is read whole, and
// returns what puts it back: a small world walks its sets only below it.
func SetSmallSet(n int64) (restore func()) {
	old := smallSet
	smallSet = n
	return func() { smallSet = old }
}
