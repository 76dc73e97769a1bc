package desk

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"passerelle/domain"
	"passerelle/eventstore"
	"passerelle/internal/snapfile"
)

// A snapshot is the index as the log left it before its counts were made
// (those are made again once caught up): the weeks, the offers, the
// schools and their pupils, the live proposals and seats. A national
// season's log takes minutes to read; from its snapshot a restart reads
// the snapshot and the log's tail only.
//
// A pupil's birth date, the only personal datum the index keeps, is
// sealed again in the snapshot with the pupil's key: once the pupil is
// forgotten (their key destroyed) no snapshot tells it any more. A pupil
// whose key is gone when the snapshot is written is written without it.
var snapshotKind = snapfile.Kind{
	Magic:     "passerelle desk snapshot\n",
	Version:   1,
	MaxString: 64 << 10, // a school, an offer's reservation or a pupil's wishes, as JSON
}

// saveAfter is how many events a catch-up reads, at least, before it
// saves a snapshot (a stop saves one when the log moved since the last).
const saveAfter = 100_000

// Sealer seals the birth dates a snapshot keeps, only with keys that
// exist, and opens them again (personal.Cipher).
type Sealer interface {
	Opener
	SealIfKept(domain.Event) (domain.Event, bool, error)
}

// SnapshotTo makes Follow start from the snapshot in file, when there is
// one of the log it follows, and save one there after a long catch-up and
// when it stops (if the log moved). It returns ix.
func (ix *Index) SnapshotTo(file string, sealer Sealer) *Index {
	ix.snapFile, ix.sealer = file, sealer
	return ix
}

// Save writes the index's snapshot to its file (SnapshotTo).
func (ix *Index) Save(ctx context.Context, store eventstore.Store) error {
	if ix.snapFile == "" {
		return nil
	}
	log, err := snapfile.LogIdentity(ctx, store)
	if err != nil {
		return err
	}
	var (
		pos     eventstore.Position
		sealErr error
	)
	err = snapfile.Save(ix.snapFile, snapshotKind, log, func(e *snapfile.Encoder) { pos, sealErr = ix.writeState(e) })
	if err = errors.Join(sealErr, err); err == nil {
		ix.mu.Lock()
		ix.savedAt = pos
		ix.mu.Unlock()
	}
	return err
}

// WriteSnapshot writes the index's snapshot to w, as folded from the log
// whose first event is log.
func (ix *Index) WriteSnapshot(w io.Writer, log string) error {
	var sealErr error
	err := snapfile.Write(w, snapshotKind, log, func(e *snapfile.Encoder) { _, sealErr = ix.writeState(e) })
	return errors.Join(sealErr, err)
}

// load starts the index from its snapshot, when there is one of the log
// store holds; it reads nothing into the index otherwise.
func (ix *Index) load(ctx context.Context, store eventstore.Store) (bool, error) {
	if ix.snapFile == "" {
		return false, nil
	}
	id, err := snapfile.LogIdentity(ctx, store)
	if err != nil {
		return false, err
	}
	head, err := store.Head(ctx)
	if err != nil {
		return false, err
	}
	fresh := New(ix.places, ix.clock)
	log, err := fresh.ReadSnapshot(ix.snapFile, ix.sealer)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("%s: %w", ix.snapFile, err)
	case log != id || fresh.pos > head:
		return false, fmt.Errorf("%s: made from another log", ix.snapFile)
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.pos != 0 || ix.counted {
		return false, errors.New("the index has folded events already")
	}
	ix.pos, ix.schools, ix.pupils, ix.offers = fresh.pos, fresh.schools, fresh.pupils, fresh.offers
	ix.offerAt, ix.schoolAt, ix.farAt, ix.weeks, ix.reach = fresh.offerAt, fresh.schoolAt, fresh.farAt, fresh.weeks, fresh.reach
	ix.proposals, ix.seats = fresh.proposals, fresh.seats
	ix.savedAt = fresh.pos
	ix.notify()
	return true, nil
}

// ReadSnapshot reads a snapshot into ix, which must be new: it answers
// the ID of the log the snapshot was folded from. A birth date opener
// cannot open (the pupil forgotten since) is unknown, as in the log.
func (ix *Index) ReadSnapshot(file string, opener Opener) (string, error) {
	return snapfile.Read(file, snapshotKind, func(d *snapfile.Decoder) { ix.readState(d, opener) })
}

// writeState writes the index's state (see snapshotKind), under its read
// lock and with no Tick under way; it answers the position written and
// the first failure to seal.
func (ix *Index) writeState(e *snapfile.Encoder) (eventstore.Position, error) {
	ix.ticking.Lock()
	defer ix.ticking.Unlock()
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	schools := cellsOf(ix.schoolAt)
	births, sealErr := ix.sealBirths(schools)
	w := snapWriter{Encoder: e, births: births}
	e.Uint(uint64(ix.pos))
	e.Float(ix.reach)
	e.Uint(uint64(len(ix.weeks.names)))
	for _, name := range ix.weeks.names {
		e.String(name)
	}
	// offers and schools in their grid cells' order, so that a cell reads
	// back as it was
	offers := cellsOf(ix.offerAt)
	w.number = make(map[*offer]int, len(offers))
	e.Uint(uint64(len(offers)))
	for i, pt := range offers {
		w.number[pt.v] = i
		w.offer(pt.v, pt.grades)
	}
	e.Uint(uint64(len(schools)))
	for _, pt := range schools {
		e.String(jsonOf(pt.v.reg))
		e.Uint(uint64(pt.grades))
		e.Uint(uint64(len(pt.v.pupils)))
		for _, p := range pt.v.pupils {
			w.pupil(p)
		}
	}
	e.Uint(uint64(len(ix.proposals)))
	for app, pr := range ix.proposals {
		e.String(app)
		e.String(pr.p.id.String())
		e.Uint(uint64(w.number[pr.o]))
		w.weeks(pr.weeks)
	}
	e.Uint(uint64(len(ix.seats)))
	for app, p := range ix.seats {
		e.String(app)
		e.String(p.id.String())
	}
	return ix.pos, sealErr
}

// snapWriter writes the parts of a snapshot.
type snapWriter struct {
	*snapfile.Encoder
	number map[*offer]int // offers by their place in the snapshot
	births []sealedBirth  // of the pupils, in the order they are written
}

// sealedBirth is a birth date sealed with its pupil's key (none: empty).
type sealedBirth struct{ nonce, sealed []byte }

// sealBirths seals the birth dates of the schools' pupils, in their order,
// on every processor: a national snapshot seals 1.4 million, which took
// 11 s on one.
func (ix *Index) sealBirths(schools []cellPoint[*school]) ([]sealedBirth, error) {
	var pupils []*pupil
	for _, pt := range schools {
		pupils = append(pupils, pt.v.pupils...)
	}
	out := make([]sealedBirth, len(pupils))
	const chunk = 1024
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for from := int(next.Add(chunk)) - chunk; from < len(pupils); from = int(next.Add(chunk)) - chunk {
				for i := from; i < min(from+chunk, len(pupils)); i++ {
					nonce, sealed, err := ix.sealBirth(pupils[i])
					if err != nil {
						mu.Lock()
						first = cmp.Or(first, err)
						mu.Unlock()
					}
					out[i] = sealedBirth{nonce, sealed}
				}
			}
		})
	}
	wg.Wait()
	return out, first
}

func (w *snapWriter) weeks(ids []int32) {
	w.Uint(uint64(len(ids)))
	for _, id := range ids {
		w.Uint(uint64(id))
	}
}

func (w *snapWriter) offer(o *offer, grades uint8) {
	for _, s := range []string{o.id, o.employerID, o.employerName, o.title, o.kind, o.sector, o.commune, o.department} {
		w.String(s)
	}
	w.Uint(uint64(len(o.grades)))
	for _, g := range o.grades {
		w.String(string(g))
	}
	w.Flags(o.ageRule, o.open, o.collective)
	w.weeks(o.weeks)
	for _, h := range o.held {
		w.Int(int64(h))
	}
	w.Int(int64(o.seats))
	w.String(jsonOf(o.reserved))
	w.Float(o.lat)
	w.Float(o.lon)
	w.Uint(uint64(grades))
}

func (w *snapWriter) pupil(p *pupil) {
	w.String(p.id.String())
	w.String(string(p.grade))
	b := w.births[0]
	w.births = w.births[1:]
	w.Bytes(b.nonce)
	w.Bytes(b.sealed)
	if p.wishes != nil {
		w.String(jsonOf(p.wishes))
	} else {
		w.String("")
	}
	w.Uint(uint64(len(p.applied)))
	for _, o := range p.applied {
		w.Uint(uint64(w.number[o]))
	}
	w.Uint(uint64(len(p.confirmed)))
	for _, c := range p.confirmed {
		w.String(c.app)
		w.weeks(c.weeks)
	}
}

// sealBirth seals pupil p's birth date with their key: nothing when it is
// unknown or the key is gone.
func (ix *Index) sealBirth(p *pupil) (nonce, sealed []byte, err error) {
	if p.birth.IsZero() || ix.sealer == nil {
		return nil, nil, nil
	}
	ev, ok, err := ix.sealer.SealIfKept(&domain.PupilRegistered{PupilID: p.id.String(), BirthDate: p.birth.Format(time.DateOnly)})
	if err != nil || !ok {
		return nil, nil, err
	}
	s := ev.(*domain.PupilRegistered).Sealed
	return s.Nonce, s.Ciphertext, nil
}

// jsonOf is v as JSON: a value of the domain, which always encodes.
func jsonOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// cellsOf is every point of g, cell by cell in the order of their keys,
// each cell's in its order.
func cellsOf[T any](g grid[T]) []cellPoint[T] {
	var out []cellPoint[T]
	for _, k := range slices.Sorted(maps.Keys(g)) {
		out = append(out, g[k]...)
	}
	return out
}

// Bounds of a snapshot's collections, so that a damaged one is refused
// before it asks for memory.
const (
	maxSnapshotWeeks = 1 << 16
	maxSnapshotList  = 1 << 16 // an offer's grades, a pupil's applications
)

// readState reads what writeState wrote into ix, new.
func (ix *Index) readState(d *snapfile.Decoder, opener Opener) {
	r := snapReader{Decoder: d, ix: ix, opener: opener}
	ix.pos = eventstore.Position(d.Uint())
	ix.reach = d.Float()
	n := d.Uint()
	if n > maxSnapshotWeeks {
		d.Fail()
	}
	for ; n > 0 && d.Err() == nil; n-- {
		ix.weeks.id(d.String())
	}
	n = d.Uint()
	r.offers = make([]*offer, 0, d.Room(n))
	for ; n > 0 && d.Err() == nil; n-- {
		r.offer()
	}
	for n = d.Uint(); n > 0 && d.Err() == nil; n-- {
		s := &school{}
		readJSON(d, &s.reg)
		s.lat, s.lon, _ = ix.places.CommuneCentre(s.reg.CommuneCode)
		s.group, _ = priority(s.reg)
		s.cell = ix.schoolAt.add(s.lat, s.lon, uint8(d.Uint()), s)
		ix.schools[s.reg.UAI] = s
		for m := d.Uint(); m > 0 && d.Err() == nil; m-- {
			r.pupil(s)
		}
	}
	// the proposals and seats of pupils forgotten since are kept, as the
	// log left them: a proposal's seat counts until it is answered
	for n = d.Uint(); n > 0 && d.Err() == nil; n-- {
		app, p := d.String(), r.pupilOf(d.String())
		ix.proposals[app] = &proposal{p: p, o: r.numbered(), weeks: r.weeks()}
		p.proposed++
	}
	for n = d.Uint(); n > 0 && d.Err() == nil; n-- {
		app, p := d.String(), r.pupilOf(d.String())
		ix.seats[app] = p
		p.holding++
	}
}

// snapReader reads the parts of a snapshot.
type snapReader struct {
	*snapfile.Decoder
	ix     *Index
	opener Opener
	offers []*offer          // by their place in the snapshot
	gone   map[string]*pupil // pupils forgotten, still named by a proposal or a seat
}

// weeks reads week IDs, each one of the weeks read.
func (r *snapReader) weeks() []int32 {
	n := r.Uint()
	if n > uint64(len(r.ix.weeks.names)) {
		r.Fail()
		return nil
	}
	out := make([]int32, 0, n)
	for ; n > 0 && r.Err() == nil; n-- {
		w := r.Uint()
		if w >= uint64(len(r.ix.weeks.names)) {
			r.Fail()
			return nil
		}
		out = append(out, int32(w))
	}
	return r.ix.weeks.share(out)
}

// list reads the length of a short list.
func (r *snapReader) list() uint64 {
	n := r.Uint()
	if n > maxSnapshotList {
		r.Fail()
		return 0
	}
	return n
}

// numbered reads an offer by its place in the snapshot.
func (r *snapReader) numbered() *offer {
	i := r.Uint()
	if i >= uint64(len(r.offers)) {
		r.Fail()
		return nil
	}
	return r.offers[i]
}

func (r *snapReader) pupilOf(id string) *pupil {
	if p := r.ix.pupils.get(id); p != nil {
		return p
	}
	if r.gone[id] == nil {
		if r.gone == nil {
			r.gone = map[string]*pupil{}
		}
		r.gone[id] = &pupil{id: idOf(id)}
	}
	return r.gone[id]
}

func (r *snapReader) offer() {
	ix := r.ix
	o := &offer{id: r.String(), employerID: ix.intern(r.String()), employerName: ix.intern(r.String()), title: r.String(),
		kind: ix.intern(r.String()), sector: ix.intern(r.String()), commune: ix.intern(r.String()), department: ix.intern(r.String())}
	var gs []domain.Grade
	for g := r.list(); g > 0 && r.Err() == nil; g-- {
		gs = append(gs, domain.Grade(r.String()))
	}
	o.grades, o.gradeSet = ix.grades(gs), gradeSet(gs)
	f := r.Flags(3)
	o.ageRule, o.open, o.collective = f[0], f[1], f[2]
	o.weeks = r.weeks()
	o.held = make([]int, len(o.weeks))
	for i := range o.held {
		o.held[i] = int(r.Int())
	}
	o.seats = int(r.Int())
	readJSON(r.Decoder, &o.reserved)
	o.lat, o.lon = r.Float(), r.Float()
	grades := uint8(r.Uint())
	if r.Err() == nil {
		r.ix.offers[o.id] = o
		r.ix.offerAt.add(o.lat, o.lon, grades, o)
		r.offers = append(r.offers, o)
	}
}

// pupil reads a pupil of school s.
func (r *snapReader) pupil(s *school) {
	id := r.String()
	p := &pupil{id: idOf(id), school: s, grade: domain.Grade(r.ix.intern(r.String())), reach: DefaultMaxDistanceKM, slot: len(s.pupils)}
	p.birth = openBirth(id, r.Bytes(), r.Bytes(), r.opener)
	p.fourteen = fourteenOf(p.birth)
	if wishes := r.String(); wishes != "" {
		var ev domain.PupilWishesRecorded
		if err := json.Unmarshal([]byte(wishes), &ev); err != nil {
			r.Fail()
		}
		p.wishes = r.ix.wishes(p, &ev)
		p.reach = float64(p.wishes.MaxDistanceKM)
		r.ix.lookFar(p)
		if len(p.wishes.Weeks) > 0 {
			p.wishWeeks = r.ix.weeks.ids(p.wishes.Weeks)
		}
	}
	for n := r.list(); n > 0 && r.Err() == nil; n-- {
		p.applied = append(p.applied, r.numbered())
	}
	for n := r.list(); n > 0 && r.Err() == nil; n-- {
		app := r.String()
		p.confirm(app, r.weeks())
	}
	s.pupils = append(s.pupils, p)
	r.ix.pupils.put(p)
}

func readJSON(d *snapfile.Decoder, v any) {
	if err := json.Unmarshal([]byte(d.String()), v); err != nil {
		d.Fail()
	}
}

// openBirth opens a birth date the snapshot sealed for pupil id: zero
// when there is none, or it cannot be opened any more.
func openBirth(id string, nonce, sealed []byte, opener Opener) time.Time {
	if len(sealed) == 0 || opener == nil {
		return time.Time{}
	}
	ev := &domain.PupilRegistered{PupilID: id, Sealed: &domain.Sealed{Subject: id, Nonce: nonce, Ciphertext: sealed}}
	if err := opener.Open(ev); err != nil || ev.Erased {
		return time.Time{}
	}
	bd, err := domain.ParseDate(ev.BirthDate)
	if err != nil {
		return time.Time{}
	}
	return bd
}
