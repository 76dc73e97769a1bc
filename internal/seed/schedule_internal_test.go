package seed

import "testing"

// TestConfirmationFollowsThePupilsEarlierCommands checks the runner's
// order against what a confirmation does: it withdraws the pupil's other
// open applications as the store has them when it runs, not as the plan
// had them. So every earlier command on an application of the same pupil
// must run before it, or the runner may play the confirmation first and
// the other command is refused (a rejection finding its application
// withdrawn). With nothing finished, the runner's schedule links every
// command of the plan after all those it must follow.
func TestConfirmationFollowsThePupilsEarlierCommands(t *testing.T) {
	p, err := NewPlan(Options{Departments: []string{"94"}, Scale: 0.05, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{plan: p, last: map[uint64]*entity{}}
	jobs := make([]*job, len(p.Commands))
	earlier := map[int32][]int{} // by pupil, the commands on their applications so far
	checked := map[Kind]int{}
	for j := range p.Commands {
		jobs[j] = r.schedule(j)
		c := &p.Commands[j]
		if c.Kind < Apply || c.Kind > Confirm {
			continue
		}
		pupil := p.apps[c.X].pupil
		if c.Kind == Confirm {
			after := follows(jobs[j])
			for _, i := range earlier[pupil] {
				if e := &p.Commands[i]; e.X != c.X {
					if !after[i] {
						t.Fatalf("the confirmation of application %d (command %d) may run before the %s of %d (command %d), both of pupil %d",
							c.X, j, e.Kind, e.X, i, pupil)
					}
					checked[e.Kind]++
				}
			}
		}
		earlier[pupil] = append(earlier[pupil], j)
	}
	t.Logf("pairs checked: %v", checked)
	for _, k := range []Kind{Apply, Accept, Reject, Withdraw} {
		if checked[k] == 0 {
			t.Fatalf("no %s came before a confirmation of the same pupil: the check proves nothing of it", k)
		}
	}
}

// follows is the commands a job runs after, directly or not.
func follows(j *job) map[int]bool {
	seen := map[int]bool{}
	stack := append([]*job(nil), j.deps...)
	for len(stack) > 0 {
		d := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if !seen[d.i] {
			seen[d.i] = true
			stack = append(stack, d.deps...)
		}
	}
	return seen
}
