package projections_test

import (
	"context"
	"strings"
	"testing"

	"passerelle/domain"
	"passerelle/eventstore"
	"passerelle/eventstore/personal"
	"passerelle/internal/testsupport/eventgen"
	"passerelle/internal/testsupport/redistest"
	"passerelle/projections"
)

// sealing is a store that seals the personal fields of what it appends,
// as the command layer does.
type sealing struct {
	*memStore
	cipher *personal.Cipher
}

func (s sealing) Append(ctx context.Context, stream string, expected eventstore.ExpectedRevision, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	out := make([]eventstore.EventData, len(events))
	for i, e := range events {
		out[i] = e
		ev, err := domain.Decode(e.Type, e.Data)
		if err != nil {
			continue // not a domain event: as it is
		}
		if ev, err = s.cipher.Seal(ev); err != nil {
			return eventstore.AppendResult{}, err
		}
		if out[i].Data, err = domain.Encode(ev); err != nil {
			return eventstore.AppendResult{}, err
		}
	}
	return s.memStore.Append(ctx, stream, expected, out...)
}

// openAll reads every event's personal fields.
type openAll struct{ projections.Projector }

func (openAll) ReadsPersonal(string) bool { return true }

// Events are opened only for the projectors that say they read their
// personal fields (PersonalReader): the read models rebuilt so are
// identical, key by key, to those rebuilt with every event opened for
// every projector.
func TestProjectorsNameThePersonalFieldsTheyRead(t *testing.T) {
	ctx := context.Background()
	keys, err := personal.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cipher := personal.NewCipher(keys)
	store := sealing{newMemStore(), cipher}
	generate(t, store, eventgen.New(eventgen.Options{Seed: 20261201}), 6000)
	rebuild := func(ps []projections.Projector) map[string]map[string]string {
		rdb := redistest.Mini(t).Client(t)
		out, err := projections.RebuildAll(ctx, store, rdb, ps, projections.RebuildOptions{Opener: cipher, Grace: -1})
		if err != nil {
			t.Fatal(err)
		}
		dumps := map[string]map[string]string{}
		for _, b := range out {
			dumps[b.Name] = dump(t, rdb, projections.GenPrefix(b.Name, b.Generation))
		}
		return dumps
	}
	declared := rebuild(projections.All())
	var all []projections.Projector
	for _, p := range projections.All() {
		all = append(all, openAll{p})
	}
	opened := rebuild(all)
	for _, p := range projections.All() {
		sameDump(t, p.Name(), opened[p.Name()], declared[p.Name()])
	}
	motivations := 0
	for _, v := range declared[projections.PlacementsName] {
		if strings.Contains(v, `"motivation":"`) && !strings.Contains(v, `"motivation":""`) {
			motivations++
		}
	}
	if motivations == 0 {
		t.Fatal("no application shows a motivation: nothing was opened")
	}
}
