// Package eventgen generates a random but coherent life of the platform
// for tests and benchmarks: registrations, offers posted, amended,
// withdrawn and reopened, applications through every status, seats held
// and released, conventions drafted, completed, signed and cancelled,
// campaign targets, pupils forgotten. Each step picks a command and
// decides it through the domain's own aggregates and decision functions,
// in the order the command handlers follow, so every event is one the
// service could have appended; a refused command appends nothing.
package eventgen

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"passerelle/commands"
	"passerelle/domain"
	"passerelle/domain/refdata"
	"passerelle/eventstore"
)

// Options shape a World; zero values take the defaults.
type Options struct {
	Seed uint64
	// Communes are where employers, schools and offers are (default: 300
	// communes of the reference data, picked at random).
	Communes []refdata.Commune
	// Setup is registered first (default: 40 employers, 30 schools, 400
	// pupils and 200 offers).
	Setup Population
	// Weights of the commands picked afterwards, by name (default
	// DefaultWeights); a command not listed is never picked.
	Weights map[string]int
	// Titles are those of the offers posted or amended (default: a
	// score of trades, each in many offers).
	Titles []string
}

// Population counts the aggregates a World starts with.
type Population struct{ Employers, Schools, Pupils, Offers int }

// DefaultWeights are how often each command is picked.
var DefaultWeights = map[string]int{
	"register_employer": 1, "register_pupil": 3, "post_offer": 10, "amend_offer": 3, "withdraw_offer": 2,
	"reopen_offer": 1, "apply": 24, "read": 5, "accept": 12, "reject": 5, "withdraw": 4, "cancel": 2,
	"expire": 3, "confirm": 8, "complete": 6, "sign": 14, "cancel_convention": 1, "set_target": 1,
	"forget_pupil": 1,
}

// Command is the events of one decided command, by stream, in order.
type Command struct {
	ID      string
	At      time.Time
	Reads   []string // streams its decisions read besides those it appends to
	Appends []Append
}

// Append is the events a command appends to one stream.
type Append struct {
	Stream string
	Events []domain.Event
}

// World is the state commands are decided against: the domain's
// aggregates.
type World struct {
	rng      *rand.Rand
	now      time.Time
	places   *refdata.Data
	communes []refdata.Commune
	steps    []step
	total    int
	cmds     int
	events   int
	out      []Command

	employers []*domain.Employer
	titles    []string
	schools   []*domain.School
	pupils    []*domain.Pupil
	offers    []*domain.Offer
	byID      map[string]any // employers, schools, pupils and offers by id
	apps      map[string]*domain.Application
	live      []*domain.Application // may still change; pruned as they end
	convs     map[string]*domain.Convention
	open      []*domain.Convention // neither signed nor cancelled; pruned
	targets   map[string]*domain.Target
}

type step struct {
	weight int
	do     func()
}

// New builds a World and decides its setup.
func New(opt Options) *World {
	w := &World{rng: rand.New(rand.NewPCG(opt.Seed, opt.Seed^0x9e3779b97f4a7c15)), places: refdata.MustLoad(),
		now: time.Date(2025, 9, 1, 8, 0, 0, 0, time.UTC), communes: opt.Communes, titles: opt.Titles,
		byID: map[string]any{}, apps: map[string]*domain.Application{}, convs: map[string]*domain.Convention{}, targets: map[string]*domain.Target{}}
	if len(w.titles) == 0 {
		w.titles = titles
	}
	if len(w.communes) == 0 {
		all := slices.Collect(w.places.Communes()) // in code order
		for range 300 {
			w.communes = append(w.communes, all[w.rng.IntN(len(all))])
		}
	}
	weights := opt.Weights
	if weights == nil {
		weights = DefaultWeights
	}
	for _, name := range slices.Sorted(maps.Keys(weights)) {
		do, ok := w.commands()[name]
		if !ok {
			panic("eventgen: no command " + name)
		}
		w.steps = append(w.steps, step{weights[name], do})
		w.total += weights[name]
	}
	setup := opt.Setup
	if setup == (Population{}) {
		setup = Population{Employers: 40, Schools: 30, Pupils: 400, Offers: 200}
	}
	for range setup.Employers {
		w.registerEmployer()
	}
	for range setup.Schools {
		w.registerSchool()
	}
	for range setup.Pupils {
		w.registerPupil()
	}
	for range setup.Offers {
		w.postOffer()
	}
	return w
}

func (w *World) commands() map[string]func() {
	return map[string]func(){
		"register_employer": w.registerEmployer, "register_pupil": w.registerPupil, "post_offer": w.postOffer,
		"amend_offer": w.amendOffer, "withdraw_offer": w.withdrawOffer, "reopen_offer": w.reopenOffer,
		"apply": w.apply, "read": w.read, "accept": w.accept, "reject": w.reject, "withdraw": w.withdraw,
		"cancel": w.cancel, "expire": w.expire, "confirm": w.confirm, "complete": w.complete, "sign": w.sign,
		"cancel_convention": w.cancelConvention, "set_target": w.setTarget, "forget_pupil": w.forgetPupil,
	}
}

// Generate decides commands until at least n events were decided since
// New, and returns those not returned yet.
func (w *World) Generate(n int) []Command {
	for w.events < n && w.total > 0 {
		k := w.rng.IntN(w.total)
		for _, s := range w.steps {
			if k < s.weight {
				s.do()
				break
			}
			k -= s.weight
		}
	}
	out := w.out
	w.out = nil
	return out
}

// Run generates commands until n events and appends them (see Write).
func (w *World) Run(ctx context.Context, store eventstore.Store, n, writers int) error {
	return Write(ctx, store, w.Generate(n), writers)
}

// Events is the number of events decided so far.
func (w *World) Events() int { return w.events }

// Offers returns the offers decided so far; these aggregates, like the
// applications and conventions, are not to be changed.
func (w *World) Offers() []*domain.Offer { return w.offers }

// Applications returns the applications decided so far.
func (w *World) Applications() map[string]*domain.Application { return w.apps }

// Conventions returns the conventions decided so far.
func (w *World) Conventions() map[string]*domain.Convention { return w.convs }

// Write appends the commands to store, each stream's events of a command
// in one append. With several writers, commands are appended concurrently
// but never before an earlier command that touched (read or appended to)
// one of their streams.
func Write(ctx context.Context, store eventstore.Store, cmds []Command, writers int) error {
	type job struct {
		cmd  Command
		deps []chan struct{}
		done chan struct{}
	}
	jobs := make(chan job)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed error
	)
	for range max(writers, 1) {
		wg.Go(func() {
			for j := range jobs {
				for _, d := range j.deps {
					<-d
				}
				mu.Lock()
				ok := failed == nil
				mu.Unlock()
				if ok {
					if err := appendCommand(ctx, store, j.cmd); err != nil {
						mu.Lock()
						failed = err
						mu.Unlock()
					}
				}
				close(j.done)
			}
		})
	}
	last := map[string]chan struct{}{}
	for _, c := range cmds {
		j := job{cmd: c, done: make(chan struct{})}
		streams := slices.Clone(c.Reads)
		for _, a := range c.Appends {
			streams = append(streams, a.Stream)
		}
		for _, s := range streams {
			if d, ok := last[s]; ok && d != j.done && !slices.Contains(j.deps, d) {
				j.deps = append(j.deps, d)
			}
			last[s] = j.done
		}
		jobs <- j
	}
	close(jobs)
	wg.Wait()
	return failed
}

func appendCommand(ctx context.Context, store eventstore.Store, c Command) error {
	md := eventstore.Metadata{CommandID: c.ID, CorrelationID: c.ID, Actor: eventstore.Actor{Role: "backoffice"}, OccurredAt: c.At}.Encode()
	for _, a := range c.Appends {
		data := make([]eventstore.EventData, len(a.Events))
		for i, e := range a.Events {
			b, err := domain.Encode(e)
			if err != nil {
				return err
			}
			data[i] = eventstore.EventData{ID: eventstore.EventID(c.ID+"/"+a.Stream, i), Type: e.EventType(), Data: b, Metadata: md}
		}
		if _, err := store.Append(ctx, a.Stream, eventstore.Any, data...); err != nil {
			return fmt.Errorf("%s: %w", a.Stream, err)
		}
	}
	return nil
}

// command is a command being decided.
type command struct {
	w *World
	c Command
}

// begin starts a command whose decisions read the streams named.
func (w *World) begin(reads ...string) *command {
	w.cmds++
	w.now = w.now.Add(time.Duration(1+w.rng.IntN(120)) * time.Second)
	return &command{w: w, c: Command{ID: fmt.Sprintf("cmd-%d", w.cmds), At: w.now, Reads: reads}}
}

// emit appends events decided by agg to its stream and folds them into it.
func (c *command) emit(stream string, agg interface{ Apply(domain.Event) }, evs []domain.Event) {
	if len(evs) == 0 {
		return
	}
	for _, e := range evs {
		agg.Apply(e)
	}
	c.c.Appends = append(c.c.Appends, Append{Stream: stream, Events: evs})
}

// end records the command, if it appended anything; one in four also
// leaves an idempotency record, a non-domain event as the HTTP API's.
func (c *command) end() {
	if len(c.c.Appends) == 0 {
		return
	}
	w := c.w
	if w.rng.IntN(4) == 0 {
		c.c.Appends = append(c.c.Appends, Append{Stream: "idempotency-" + c.c.ID, Events: []domain.Event{commandCompleted{}}})
	}
	for _, a := range c.c.Appends {
		w.events += len(a.Events)
	}
	w.out = append(w.out, c.c)
}

// commandCompleted is the command handlers' idempotency record.
type commandCompleted struct {
	Status int `json:"status"`
}

func (commandCompleted) EventType() string { return "CommandCompleted" }

func (w *World) id() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(w.rng.UintN(256))
	}
	u, _ := uuid.FromBytes(b[:])
	u[6] = (u[6] & 0x0f) | 0x40
	u[8] = (u[8] & 0x3f) | 0x80
	return u.String()
}

func (w *World) pick(n int) int { return w.rng.IntN(n) }

// get returns the aggregate of type A registered under id.
func get[A any](w *World, id string) *A {
	a, _ := w.byID[id].(*A)
	return a
}

func (w *World) commune() refdata.Commune { return w.communes[w.pick(len(w.communes))] }

// applicationID and conventionID are the command handlers' own.
var (
	applicationID = commands.ApplicationID
	conventionID  = commands.ConventionID
)
