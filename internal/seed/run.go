package seed

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"passerelle/commands"
	"passerelle/domain"
	"passerelle/domain/refdata"
	"passerelle/eventstore"
	"passerelle/eventstore/personal"
)

// Progress is how far a run has gone.
type Progress struct {
	Done, Total int   // commands answered (done or refused), commands planned
	Events      int64 // appended
	Failed      int   // refused by the service
	// Cut is how many commands an interrupt stopped before their answer:
	// whether their events were appended is not known, and they are
	// neither done nor refused.
	Cut     int
	Elapsed time.Duration
}

// Report is the outcome of a run.
type Report struct {
	Progress
	Failures map[Kind]int
	First    []string // the first failures, for the log
}

// RunConfig is where a plan is played.
type RunConfig struct {
	Store  eventstore.Store
	Keys   personal.Keys // the personal-data keys the service seals with
	Places domain.Places // default: the embedded reference data
	// Workers is how many commands run at once (default 64): the
	// embedded store commits concurrent appends together.
	Workers int
	// CacheSize is how many aggregates the service keeps in memory
	// (default: CacheSizeFor the plan).
	CacheSize int
	Every     time.Duration // how often Progress is called (default 1 s)
	Progress  func(Progress)
}

// counting counts the events appended through it.
type counting struct {
	eventstore.Store
	n atomic.Int64
}

func (c *counting) Append(ctx context.Context, stream string, expected eventstore.ExpectedRevision, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	r, err := c.Store.Append(ctx, stream, expected, events...)
	if err == nil {
		c.n.Add(int64(len(events)))
	}
	return r, err
}

// job is one command waiting for the earlier commands on its entities.
type job struct {
	i             int
	deps          []*job
	done          chan struct{}
	writes, reads []uint64
}

// entity is the commands in flight on one entity: the last that changes
// it and those that read it since.
type entity struct {
	writer  *job
	readers []*job
}

func finished(j *job) bool {
	select {
	case <-j.done:
		return true
	default:
		return false
	}
}

// entity keys: the kind in the top byte, the index below
const (
	keySchool uint64 = iota + 1
	keyPupil
	keyEmployer
	keyOffer
	keyApp
)

func key(kind uint64, i int32) uint64 { return kind<<56 | uint64(uint32(i)) }

// ids are the ids the service gave one kind of entity, by index in the
// plan. The service's ids are UUIDs, kept as such: a slice without
// pointers for the garbage collector to scan (a national seed registers a
// million and a half pupils). An id not given (its command failed) reads "".
type ids []uuid.UUID

func (t ids) set(i int32, id string) { t[i], _ = uuid.Parse(id) }

func (t ids) get(i int32) string {
	if t[i] == uuid.Nil {
		return ""
	}
	return t[i].String()
}

type runner struct {
	plan      *Plan
	svc       *commands.Service
	store     *counting
	pupils    ids
	employers ids
	offers    ids

	mu     sync.Mutex
	last   map[uint64]*entity // the commands in flight on each entity
	done   atomic.Int64
	failed atomic.Int64
	cut    atomic.Int64
	fails  [kinds]atomic.Int64
	first  []string
}

// Run plays the plan's commands through commands.Service, in parallel but
// never before an earlier command on the same school, pupil, employer,
// offer or application.
func Run(ctx context.Context, plan *Plan, cfg RunConfig) (Report, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = 64
	}
	if cfg.Every <= 0 {
		cfg.Every = time.Second
	}
	if cfg.Places == nil {
		ref, err := refdata.Load()
		if err != nil {
			return Report{}, err
		}
		cfg.Places = ref
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = CacheSizeFor(plan)
	}
	store := &counting{Store: cfg.Store}
	svc := commands.NewService(store, cfg.Places).WithCacheSize(cfg.CacheSize).WithPersonalData(personal.NewCipher(cfg.Keys))
	r := &runner{plan: plan, store: store, last: map[uint64]*entity{}, svc: svc,
		pupils: make(ids, len(plan.w.pupils)), employers: make(ids, len(plan.w.employers)),
		offers: make(ids, len(plan.w.offers))}
	start := time.Now()
	progress := func() Progress {
		return Progress{Done: int(r.done.Load()), Total: len(plan.Commands), Events: store.n.Load(),
			Failed: int(r.failed.Load()), Cut: int(r.cut.Load()), Elapsed: time.Since(start)}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	if cfg.Progress != nil {
		wg.Go(func() { tick(cfg.Every, stop, func() { cfg.Progress(progress()) }) })
	}
	jobs := make(chan *job, cfg.Workers)
	var workers sync.WaitGroup
	for range cfg.Workers {
		workers.Go(func() {
			for j := range jobs {
				for _, d := range j.deps {
					<-d.done
				}
				if ctx.Err() == nil {
					r.exec(ctx, j.i)
				}
				r.finish(j)
			}
		})
	}
	for i := range plan.Commands {
		if ctx.Err() != nil {
			break
		}
		jobs <- r.schedule(i)
	}
	close(jobs)
	workers.Wait()
	close(stop)
	wg.Wait()
	rep := r.report(progress())
	if cfg.Progress != nil {
		cfg.Progress(rep.Progress)
	}
	return rep, ctx.Err()
}

// maxCacheSize bounds the aggregates a seed keeps in memory. Every
// cached aggregate is a dozen objects the collector marks at each cycle,
// and the collector runs the more often the more is live: nationally,
// the events seeded in the first ten minutes were 6.42 million with
// 200,000 aggregates, 7.30 with 100,000 and 7.90 with 40,000; 10,000 and
// 500,000 were behind from the first minutes.
const maxCacheSize = 40_000

// CacheSizeFor is how many aggregates the service keeps while playing a
// plan: one per eight commands, at least commands.DefaultCacheSize, at
// most maxCacheSize. A command loads about seven aggregates, most of them
// loaded again by a command soon after (a pupil's next application, the
// offer it applies to); the streams active at one time grow with the
// plan, and an aggregate the cache dropped is read again whole, decrypted
// and decoded. A département at scale 0.3 keeps the default, which holds
// nearly all it uses (91 % of loads find their aggregate); played with
// 70 aggregates, it finds 38 % and costs 46 % more CPU.
func CacheSizeFor(p *Plan) int {
	return min(max(commands.DefaultCacheSize, len(p.Commands)/8), maxCacheSize)
}

func (r *runner) report(p Progress) Report {
	rep := Report{Progress: p, Failures: map[Kind]int{}, First: r.first}
	for k := range kinds {
		if n := r.fails[k].Load(); n > 0 {
			rep.Failures[k] = int(n)
		}
	}
	return rep
}

// tick calls f every interval until stop is closed.
func tick(every time.Duration, stop <-chan struct{}, f func()) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			f()
		}
	}
}

// schedule links command i after the commands in flight that it must
// follow: a command that changes an entity follows every earlier one on
// it; one that only reads it follows the last that changed it.
func (r *runner) schedule(i int) *job {
	j := &job{i: i, done: make(chan struct{})}
	j.writes, j.reads = r.keysOf(&r.plan.Commands[i])
	r.mu.Lock()
	for _, k := range j.reads {
		e := r.entity(k)
		if e.writer != nil {
			j.deps = append(j.deps, e.writer)
		}
		live := e.readers[:0]
		for _, x := range e.readers {
			if !finished(x) {
				live = append(live, x)
			}
		}
		e.readers = append(live, j)
	}
	for _, k := range j.writes {
		e := r.entity(k)
		if e.writer != nil {
			j.deps = append(j.deps, e.writer)
		}
		j.deps = append(j.deps, e.readers...)
		e.writer, e.readers = j, nil
	}
	r.mu.Unlock()
	return j
}

// keysOf names the entities a command changes and those it only reads.
func (r *runner) keysOf(c *Command) (writes, reads []uint64) {
	w := r.plan.w
	switch c.Kind {
	case RegisterSchool:
		return []uint64{key(keySchool, c.X)}, nil
	case RegisterPupil:
		return []uint64{key(keyPupil, c.X)}, []uint64{key(keySchool, w.pupils[c.X].school)}
	case RegisterEmployer:
		return []uint64{key(keyEmployer, c.X)}, nil
	case PostOffer:
		return []uint64{key(keyOffer, c.X)}, []uint64{key(keyEmployer, w.offers[c.X].employer)}
	case WithdrawOffer:
		return []uint64{key(keyOffer, c.X)}, nil
	}
	return r.appKeys(c)
}

// appKeys are keysOf for the commands on an application.
func (r *runner) appKeys(c *Command) (writes, reads []uint64) {
	a := r.plan.apps[c.X]
	app, pupil, offer := key(keyApp, c.X), key(keyPupil, a.pupil), key(keyOffer, a.offer)
	switch c.Kind {
	case Apply:
		// a pupil's applications go one after the other, so that their
		// stream records them in the same order at every run; those to
		// one offer go together, and a seat taken follows them all
		return []uint64{app, pupil}, []uint64{offer}
	case Accept:
		return []uint64{app, offer}, nil
	case Withdraw, Expire:
		if c.Arg&heldSeat != 0 {
			return []uint64{app, offer, pupil}, nil
		}
		return []uint64{app}, []uint64{pupil, offer}
	case Confirm:
		writes = []uint64{app, pupil}
		for k, o := range r.plan.withdrawn[max(c.Extra, 0) : max(c.Extra, 0)+int32(c.NExtra)] {
			writes = append(writes, key(keyApp, o))
			if c.Arg&(1<<k) != 0 || k >= 7 {
				writes = append(writes, key(keyOffer, r.plan.apps[o].offer))
			}
		}
		return writes, []uint64{offer}
	case Reject:
		// a confirmation withdraws the pupil's other open applications as
		// the store has them: the rejection of one must come first
		return []uint64{app}, []uint64{pupil}
	}
	return []uint64{app}, nil // the convention's steps
}

func (r *runner) entity(k uint64) *entity {
	e := r.last[k]
	if e == nil {
		e = &entity{}
		r.last[k] = e
	}
	return e
}

func (r *runner) finish(j *job) {
	close(j.done)
	r.mu.Lock()
	for _, k := range append(j.writes, j.reads...) {
		if e := r.last[k]; e != nil && (e.writer == nil || finished(e.writer)) && allFinished(e.readers) {
			delete(r.last, k)
		}
	}
	r.mu.Unlock()
}

func allFinished(js []*job) bool {
	for _, j := range js {
		if !finished(j) {
			return false
		}
	}
	return true
}

func (r *runner) exec(ctx context.Context, i int) {
	c := &r.plan.Commands[i]
	err := r.do(ctx, i, c)
	if err != nil && ctx.Err() != nil {
		r.cut.Add(1) // cut short by the interrupt, not refused
		return
	}
	r.done.Add(1)
	if err == nil {
		return
	}
	r.failed.Add(1)
	r.fails[c.Kind].Add(1)
	r.mu.Lock()
	if len(r.first) < 10 {
		r.first = append(r.first, fmt.Sprintf("%s %d at %s: %v", c.Kind, c.X, time.Unix(c.At, 0).UTC().Format(time.RFC3339), err))
	}
	r.mu.Unlock()
}

func (r *runner) meta(i int, c *Command, role, subject string) commands.Meta {
	id := fmt.Sprintf("seed-%d-%d", r.plan.Options.Seed, i)
	return commands.Meta{CommandID: id, CorrelationID: id, Now: time.Unix(c.At, 0).UTC(),
		Actor: eventstore.Actor{Role: role, Subject: subject}}
}

func (r *runner) appID(ai int32) string {
	a := r.plan.apps[ai]
	return commands.ApplicationID(r.offers.get(a.offer), r.pupils.get(a.pupil))
}

func (r *runner) do(ctx context.Context, i int, c *Command) error {
	in := inputs{plan: r.plan}
	switch c.Kind {
	case RegisterSchool:
		_, err := r.svc.RegisterSchool(ctx, r.meta(i, c, "backoffice", "seed"), in.school(c.X))
		return err
	case RegisterPupil:
		s := r.plan.w.schools[r.plan.w.pupils[c.X].school]
		res, err := r.svc.RegisterPupil(ctx, r.meta(i, c, "school", s.uai), in.pupil(c.X))
		r.pupils.set(c.X, res.ID)
		return err
	case RegisterEmployer:
		res, err := r.svc.RegisterEmployer(ctx, r.meta(i, c, "backoffice", "seed"), in.employer(c.X))
		r.employers.set(c.X, res.ID)
		return err
	case PostOffer:
		emp := r.employers.get(r.plan.w.offers[c.X].employer)
		res, err := r.svc.PostOffer(ctx, r.meta(i, c, "employer", emp), commands.PostOfferInput{EmployerID: emp, PostOfferInput: in.offer(c.X)})
		r.offers.set(c.X, res.ID)
		return err
	case WithdrawOffer:
		emp := r.employers.get(r.plan.w.offers[c.X].employer)
		_, err := r.svc.WithdrawOffer(ctx, r.meta(i, c, "employer", emp), r.offers.get(c.X), "Nous ne pouvons plus accueillir de stagiaire cette année.")
		return err
	}
	a := r.plan.apps[c.X]
	pupilID, offerID, appID := r.pupils.get(a.pupil), r.offers.get(a.offer), r.appID(c.X)
	emp := r.employers.get(r.plan.w.offers[a.offer].employer)
	var err error
	switch c.Kind {
	case Apply:
		_, err = r.svc.Apply(ctx, r.meta(i, c, "pupil", pupilID), commands.ApplyInput{OfferID: offerID, PupilID: pupilID,
			SubmitInput: domain.SubmitInput{Weeks: in.weeks(a.pupil), Motivation: in.motivation(c.X)}})
	case Accept:
		_, err = r.svc.Accept(ctx, r.meta(i, c, "employer", emp), appID)
	case Reject:
		_, err = r.svc.Reject(ctx, r.meta(i, c, "employer", emp), appID, rejections[c.Arg])
	case Withdraw:
		_, err = r.svc.Withdraw(ctx, r.meta(i, c, "pupil", pupilID), appID, "J'ai trouvé un autre stage.")
	case Expire:
		// the expiry scheduler's own command, so that it never expires twice
		m := commands.Meta{CommandID: "expire/" + appID, CorrelationID: "expire/" + appID, Now: time.Unix(c.At, 0).UTC(),
			Actor: eventstore.Actor{Role: "system", Subject: "expiry-scheduler"}}
		_, err = r.svc.Expire(ctx, m, appID)
	case Confirm:
		_, err = r.svc.Confirm(ctx, r.meta(i, c, "pupil", pupilID), appID)
	case CompleteEmployer, CompleteSchool:
		role, subject := "employer", emp
		if c.Kind == CompleteSchool {
			role, subject = "school", r.plan.w.schools[r.plan.w.pupils[a.pupil].school].uai
		}
		_, err = r.svc.CompleteConvention(ctx, r.meta(i, c, role, subject), commands.ConventionID(appID), in.complete(c))
	case Sign:
		err = r.sign(ctx, i, c, appID, pupilID, emp)
	}
	return err
}

// sign signs the convention's current document, whose hash the last
// completion recorded.
func (r *runner) sign(ctx context.Context, i int, c *Command, appID, pupilID, emp string) error {
	convID := commands.ConventionID(appID)
	evs, err := r.store.ReadStream(ctx, domain.ConventionStream(convID), eventstore.Backwards, eventstore.End, 0)
	if err != nil {
		return err
	}
	hash := ""
	for _, re := range evs {
		if re.Type == (&domain.ConventionCompleted{}).EventType() {
			e, err := domain.Decode(re.Type, re.Data)
			if err != nil {
				return err
			}
			hash = e.(*domain.ConventionCompleted).DocumentHash
			break
		}
	}
	if hash == "" {
		return errors.New("the convention has no completed document to sign")
	}
	in := inputs{plan: r.plan}
	role := domain.RequiredRoles[c.Arg]
	actor, subject := string(role), ""
	switch role {
	case domain.RoleEmployer:
		subject = emp
	case domain.RoleSchoolHead:
		actor, subject = "school", r.plan.w.schools[r.plan.w.pupils[r.plan.apps[c.X].pupil].school].uai
	default:
		subject = pupilID
	}
	_, err = r.svc.Sign(ctx, r.meta(i, c, actor, subject), convID, domain.SignInput{Role: string(role),
		SignerName: in.signer(c.X, role), DocumentHash: hash})
	return err
}

// FormatProgress renders a progress line: commands, events, rate, ETA.
func FormatProgress(p Progress, bar bool) string {
	rate := float64(p.Events) / max(p.Elapsed.Seconds(), 1e-9)
	eta := "?"
	if p.Done > 0 && p.Done < p.Total {
		eta = (time.Duration(float64(p.Elapsed) * float64(p.Total-p.Done) / float64(p.Done))).Round(time.Second).String()
	} else if p.Done >= p.Total {
		eta = "0s"
	}
	pct := 100 * float64(p.Done) / float64(max(p.Total, 1))
	line := fmt.Sprintf("%d/%d commands (%.1f%%), %d events, %.0f events/s, %d failed, elapsed %s, ETA %s",
		p.Done, p.Total, pct, p.Events, rate, p.Failed, p.Elapsed.Round(time.Second), eta)
	if !bar {
		return line
	}
	const width = 30
	n := int(pct / 100 * width)
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "] " + line
}
