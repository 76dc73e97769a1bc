package reconcile

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"passerelle/eventstore"
)

// snapshot is what the reconciler keeps between runs: its view, and the
// log it was folded from (the ID of the log's first event), so a snapshot
// of another log is never used.
type snapshot struct {
	Version int
	Log     string
	View    *View
}

const snapshotVersion = 2 // 2: placements name their group booking

// logIdentity is the ID of the log's first event ("" while it is empty).
func logIdentity(ctx context.Context, store eventstore.Store) (string, error) {
	evs, err := store.ReadAll(ctx, eventstore.Start, 1)
	if err != nil || len(evs) == 0 {
		return "", err
	}
	return evs[0].ID.String(), nil
}

// load starts the view from the snapshot file, when there is one of this
// log whose position the log has reached.
func (r *Reconciler) load(ctx context.Context) error {
	if r.file == "" {
		return nil
	}
	b, err := os.ReadFile(r.file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var s snapshot
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&s); err != nil {
		return fmt.Errorf("%s: %w", r.file, err)
	}
	id, err := logIdentity(ctx, r.store)
	if err != nil {
		return err
	}
	head, err := r.store.Head(ctx)
	if err != nil {
		return err
	}
	switch {
	case s.Version != snapshotVersion:
		return fmt.Errorf("%s: version %d, this reconciler reads %d", r.file, s.Version, snapshotVersion)
	case s.Log != id || s.View == nil || s.View.Position > head:
		return fmt.Errorf("%s: made from another log", r.file)
	}
	s.View.index()
	r.mu.Lock()
	r.view = s.View
	r.mu.Unlock()
	return nil
}

// save writes the snapshot atomically and durably: a temporary file,
// fsynced, renamed over the last one, and the directory fsynced.
func (r *Reconciler) save(ctx context.Context) error {
	if r.file == "" {
		return nil
	}
	id, err := logIdentity(ctx, r.store)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	r.mu.Lock()
	err = gob.NewEncoder(&buf).Encode(snapshot{Version: snapshotVersion, Log: id, View: r.view})
	r.mu.Unlock()
	if err != nil {
		return err
	}
	tmp := r.file + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		return errors.Join(err, f.Close())
	}
	if err := f.Sync(); err != nil {
		return errors.Join(err, f.Close())
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, r.file); err != nil {
		return err
	}
	dir, err := os.Open(filepath.Dir(r.file))
	if err != nil {
		return err
	}
	return errors.Join(dir.Sync(), dir.Close())
}
