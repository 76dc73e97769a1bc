package commands

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"time"

	"passerelle/domain"
	"passerelle/eventstore"
	"passerelle/eventstore/chain"
	"passerelle/eventstore/personal"
)

// aggregate is what the repository rebuilds from a stream.
type aggregate interface {
	Apply(domain.Event)
}

// loaded is an aggregate's stream state after a load.
type loaded struct {
	stream   string
	revision int64 // -1: no stream
	position eventstore.Position
	hash     string // of the last event, for the tamper-evident chain
}

func (l loaded) expected() eventstore.ExpectedRevision {
	if l.revision < 0 {
		return eventstore.NoStream
	}
	return eventstore.Exact(uint64(l.revision))
}

// repository loads aggregates from their streams and appends their decisions
// with the revision it loaded.
type repository struct {
	store eventstore.Store
	// cipher seals personal data before it is stored and opens it when
	// read back; nil stores everything in clear (tests of other concerns).
	cipher *personal.Cipher
	// cache keeps loaded aggregates; nil loads every stream whole.
	cache *aggregateCache
}

// load returns the aggregate of stream at its last revision: the cached
// one brought up to date with the events after it, or the stream read
// whole.
func load[A any, PA interface {
	*A
	aggregate
}](ctx context.Context, r repository, stream string) (PA, loaded, error) {
	epoch := r.cache.begin()
	if c, l, ok := r.cache.get(stream); ok {
		if agg, ok := c.(PA); ok {
			if now, err := r.fold(ctx, agg, l); err == nil {
				if now.revision != l.revision { // else the cache holds it already
					r.cache.put(agg, now, epoch)
				}
				return agg, now, nil
			}
		}
		r.cache.drop(stream) // not what this stream holds: read it whole
	}
	agg := PA(new(A))
	l, err := r.fold(ctx, agg, loaded{stream: stream, revision: -1})
	if err != nil {
		return nil, l, err
	}
	// A stream not written yet is not cached: its next load reads it from
	// its start whether its empty state is cached or not, and each new
	// offer, application or pupil would copy an empty aggregate into the
	// cache and push out one that saves reading a stream.
	if l.revision >= 0 {
		r.cache.put(agg, l, epoch)
	}
	return agg, l, nil
}

// loadShared is load for a command that only consults the aggregate: it
// may be the cached one itself, which the caller must not change. A
// cached state with nothing new is handed out without a copy.
func loadShared[A any, PA interface {
	*A
	aggregate
}](ctx context.Context, r repository, stream string) (PA, loaded, error) {
	agg, l, _, err := loadKept[A, PA](ctx, r, stream)
	return agg, l, err
}

// loadKept is loadShared that also tells whether the aggregate is the
// cache's (kept): a caller that goes on to change it copies it first.
func loadKept[A any, PA interface {
	*A
	aggregate
}](ctx context.Context, r repository, stream string) (PA, loaded, bool, error) {
	epoch := r.cache.begin()
	if c, l, ok := r.cache.peek(stream); ok {
		if agg, ok := c.(PA); ok {
			if evs, err := r.since(ctx, l); err == nil {
				if len(evs) == 0 {
					return agg, l, true, nil
				}
				own := deepCopy(agg).(PA)
				if now, err := r.apply(own, l, evs); err == nil {
					r.cache.keep(own, now, epoch)
					return own, now, true, nil
				}
			}
		}
		r.cache.drop(stream) // not what this stream holds: read it whole
	}
	agg := PA(new(A))
	l, err := r.fold(ctx, agg, loaded{stream: stream, revision: -1})
	if err != nil {
		return nil, l, false, err
	}
	if l.revision < 0 { // as load: a stream not written yet is not cached
		return agg, l, false, nil
	}
	r.cache.keep(agg, l, epoch)
	return agg, l, true, nil
}

// fold applies to agg, which is at state l, the events of its stream
// after l.
func (r repository) fold(ctx context.Context, agg aggregate, l loaded) (loaded, error) {
	evs, err := r.since(ctx, l)
	if err != nil {
		return l, err
	}
	return r.apply(agg, l, evs)
}

// since reads the events of a stream after state l (none for a stream
// that does not exist yet at l).
func (r repository) since(ctx context.Context, l loaded) ([]eventstore.RecordedEvent, error) {
	evs, err := r.store.ReadStream(ctx, l.stream, eventstore.Forwards, uint64(l.revision+1), 0)
	if errors.Is(err, eventstore.ErrStreamNotFound) && l.revision < 0 {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", l.stream, err)
	}
	return evs, nil
}

// apply folds into agg, at state l, the events read after it.
func (r repository) apply(agg aggregate, l loaded, evs []eventstore.RecordedEvent) (loaded, error) {
	stream := l.stream
	for _, re := range evs {
		if int64(re.Revision) != l.revision+1 {
			return l, fmt.Errorf("load %s: revision %d after %d", stream, re.Revision, l.revision)
		}
		e, err := domain.Decode(re.Type, re.Data)
		if err != nil {
			return l, fmt.Errorf("load %s@%d: %w", stream, re.Revision, err)
		}
		if r.cipher != nil {
			if err := r.cipher.Open(e); err != nil {
				return l, fmt.Errorf("load %s@%d: %w", stream, re.Revision, err)
			}
		}
		agg.Apply(e)
		l.revision, l.position = int64(re.Revision), re.Position
	}
	if len(evs) > 0 {
		l.hash = chain.Of(evs[len(evs)-1]) // the last event's, which the next append chains to
	}
	return l, nil
}

// append writes the decided events of one command step, and returns the
// stream's state after them. Event IDs derive from the command ID, the
// stream and the step, so a retried command is deduplicated by the store:
// the state then says which revision the store found (fresh is false).
func (r repository) append(ctx context.Context, m Meta, l loaded, evs []domain.Event) (after loaded, fresh bool, err error) {
	if len(evs) == 0 {
		return l, false, nil
	}
	data := make([]eventstore.EventData, len(evs))
	prev := l.hash
	for i, e := range evs {
		if r.cipher != nil {
			var err error
			if e, err = r.cipher.Seal(e); err != nil {
				return l, false, fmt.Errorf("seal %s: %w", e.EventType(), err)
			}
		}
		b, err := domain.Encode(e)
		if err != nil {
			return l, false, fmt.Errorf("encode %s: %w", e.EventType(), err)
		}
		md := eventstore.Metadata{
			CommandID: m.CommandID, CorrelationID: m.CorrelationID, CausationID: m.CommandID,
			Actor: m.Actor, OccurredAt: m.Now, PrevHash: prev, Reason: m.reason,
		}.Encode()
		id := eventstore.EventID(m.CommandID+"/"+l.stream+"/"+m.step, i)
		data[i] = eventstore.EventData{ID: id, Type: e.EventType(), Data: b, Metadata: md}
		prev = chain.Hash(l.stream, uint64(l.revision+1+int64(i)), id, e.EventType(), b, md)
	}
	var res eventstore.AppendResult
	rec, completes := m.completes()
	if ma, ok := r.store.(eventstore.MultiAppender); ok && completes {
		res, err = r.appendCompleted(ctx, ma, m, rec, l, data)
	} else {
		res, err = r.store.Append(ctx, l.stream, l.expected(), data...)
	}
	if err != nil {
		return l, false, err
	}
	// the events written now end at this revision; a retry's, found
	// written before, end at or before the revision loaded
	fresh = res.LastRevision == uint64(l.revision+int64(len(evs)))
	return loaded{stream: l.stream, revision: int64(res.LastRevision), position: res.Position, hash: prev}, fresh, nil
}

// appendCompleted writes a command's last events and its idempotency
// record in one durable write. The record goes first: when another
// request took the key meanwhile, its refusal is what the command
// reports (errKeyTaken), not a conflict on the events worth retrying.
func (r repository) appendCompleted(ctx context.Context, ma eventstore.MultiAppender, m Meta, rec eventstore.StreamAppend, l loaded, data []eventstore.EventData) (eventstore.AppendResult, error) {
	res, err := ma.AppendMulti(ctx, rec, eventstore.StreamAppend{Stream: l.stream, Expected: l.expected(), Events: data})
	var wrong *eventstore.WrongExpectedVersionError
	if errors.As(err, &wrong) && wrong.Stream == rec.Stream {
		return eventstore.AppendResult{}, errKeyTaken
	}
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	m.idem.written, m.idem.position = true, res[0].Position
	return res[1], nil
}

// maxAttempts bounds the reload-and-decide loop on concurrent changes.
const maxAttempts = 16

// backoff spreads out writers that keep colliding on a hot stream (the
// last seats of a popular offer): a random pause, growing with attempts.
func backoff(ctx context.Context, attempt int) error {
	limit := min(time.Millisecond<<attempt, 50*time.Millisecond)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(rand.N(limit)):
		return nil
	}
}

// update loads an aggregate, decides and appends with the loaded revision,
// deciding again on a concurrent change. It returns the state after the
// decision, which may be the cache's: the caller only reads it.
func update[A any, PA interface {
	*A
	aggregate
}](ctx context.Context, r repository, m Meta, stream string, decide func(PA) ([]domain.Event, error)) (PA, eventstore.Position, error) {
	return updateN(ctx, r, m, stream, maxAttempts, decide)
}

// updateN is update with its own bound on attempts, for steps that must not
// give up easily (releasing a seat after a decided withdrawal).
//
// A decision only reads the aggregate, so it is decided on the cached one
// itself, and the one copy is taken after the append, to fold the
// decision into: copying on the way out of the cache and again on the way
// back in took a twentieth of a national seed's CPU.
func updateN[A any, PA interface {
	*A
	aggregate
}](ctx context.Context, r repository, m Meta, stream string, maxAttempts int, decide func(PA) ([]domain.Event, error)) (PA, eventstore.Position, error) {
	for attempt := 1; ; attempt++ {
		epoch := r.cache.begin()
		agg, l, kept, err := loadKept[A, PA](ctx, r, stream)
		if err != nil {
			return nil, 0, err
		}
		evs, err := decide(agg)
		if err != nil {
			return agg, 0, err
		}
		after, fresh, err := r.append(ctx, m, l, evs)
		if errors.Is(err, eventstore.ErrWrongExpectedVersion) && attempt < maxAttempts {
			if err := backoff(ctx, attempt); err != nil {
				return agg, 0, err
			}
			continue
		}
		if err != nil {
			return agg, 0, err
		}
		if len(evs) == 0 {
			return agg, after.position, nil
		}
		// the state after the decision, for steps that follow, and for
		// the cache: the next command on this stream need not read back
		// what this one wrote (a retry's events, written before, may
		// differ from this decision: they are read)
		if kept {
			agg = deepCopy(agg).(PA)
		}
		for _, e := range evs {
			agg.Apply(e)
		}
		if fresh {
			r.checkWritten(ctx, agg, after)
			r.cache.keep(agg, after, epoch)
		}
		return agg, after.position, nil
	}
}

// checkWritten panics when CheckCache is set and agg, a state a command
// decided and then cached without reading it back, is not what its
// stream read whole gives.
func (r repository) checkWritten(ctx context.Context, agg aggregate, after loaded) {
	if !CheckCache {
		return
	}
	fresh := reflect.New(reflect.TypeOf(agg).Elem()).Interface().(aggregate)
	// up to the revision written: other commands may have written since
	evs, err := r.store.ReadStream(context.WithoutCancel(ctx), after.stream, eventstore.Forwards, 0, int(after.revision)+1)
	l := loaded{stream: after.stream, revision: -1}
	if err == nil {
		l, err = repository{cipher: r.cipher}.apply(fresh, l, evs)
	}
	if err != nil || l != after || !reflect.DeepEqual(agg, fresh) {
		panic(fmt.Sprintf("commands: the state written to %s is not what it reads back (%v):\n%+v at %+v\n%+v at %+v", after.stream, err, agg, after, fresh, l))
	}
}

// read loads an aggregate that the command only consults: it may be
// shared with the cache and with other commands, and must not be changed.
func read[A any, PA interface {
	*A
	aggregate
}](ctx context.Context, r repository, stream string) (PA, error) {
	agg, _, err := loadShared[A, PA](ctx, r, stream)
	return agg, err
}

// readIf reads an aggregate the command consults when ok (its id is
// valid), and returns nil otherwise, which the domain reports as a field
// error.
func readIf[A any, PA interface {
	*A
	aggregate
}](ctx context.Context, r repository, ok bool, stream string) (PA, error) {
	if !ok {
		return nil, nil
	}
	return read[A, PA](ctx, r, stream)
}

// updateByID decides on the aggregate a client names by id: an id that
// cannot exist is not found, whatever the store holds.
func updateByID[A any, PA interface {
	*A
	aggregate
}](ctx context.Context, r repository, m Meta, kind string, stream func(string) string, id string, decide func(PA) ([]domain.Event, error)) (Result, error) {
	if !domain.ValidID(id) {
		return Result{}, domain.NotFoundf("%s", kind)
	}
	_, pos, err := update(ctx, r, m.final(id), stream(id), decide)
	return Result{ID: id, Position: pos}, err
}

// Chained reports whether a stream's events carry the tamper-evident chain:
// every stream Passerelle writes.
func Chained(stream string) bool {
	switch cat := eventstore.Category(stream); cat {
	case "idempotency", "seal", "target":
		return true
	default:
		for _, c := range domain.Categories {
			if c == cat {
				return true
			}
		}
		return false
	}
}
