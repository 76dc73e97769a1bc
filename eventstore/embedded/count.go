package embedded

import (
	"context"

	bolt "go.etcd.io/bbolt"

	"passerelle/eventstore"
)

// CountAfter implements eventstore.Counter: it walks the log's keys
// without decoding a record.
func (s *Store) CountAfter(ctx context.Context, from eventstore.Position, max int) (int, error) {
	n := 0
	err := s.view(func(tx *bolt.Tx) error {
		if uint64(from) == ^uint64(0) {
			return nil
		}
		c := tx.Bucket(bucketLog).Cursor()
		for k, _ := c.Seek(u64(uint64(from) + 1)); k != nil && n < max; k, _ = c.Next() {
			if err := pollCtx(ctx, uint64(n)); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}
