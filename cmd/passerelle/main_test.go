package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"passerelle/commands"
	"passerelle/domain"
	"passerelle/domain/refdata"
	"passerelle/eventstore/embedded"
	"passerelle/internal/auth"
	"passerelle/internal/testsupport/redistest"
)

// placementIn writes a submitted application to a new embedded store in
// dir and returns the application's id.
func placementIn(t *testing.T, dir string) string {
	t.Helper()
	s, err := embedded.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}()
	ctx := context.Background()
	svc := commands.NewService(s, refdata.MustLoad())
	n := 0
	m := func() commands.Meta { n++; return commands.Meta{CommandID: fmt.Sprint("c", n), Now: time.Now()} }
	ok := func(r commands.Result, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return r.ID
	}
	emp := ok(svc.RegisterEmployer(ctx, m(), domain.RegisterEmployerInput{Name: "E", SIRET: "73282932000074", Kind: "public", CommuneCode: "94028", Address: "a"}))
	ok(svc.RegisterSchool(ctx, m(), domain.RegisterSchoolInput{UAI: "0941234A", Name: "Collège", Kind: "college", CommuneCode: "94028", EducationPriority: "none"}))
	week := domain.WeekOf(time.Now().AddDate(0, 2, 0))
	offer := ok(svc.PostOffer(ctx, m(), commands.PostOfferInput{EmployerID: emp, PostOfferInput: domain.PostOfferInput{
		Title: "Atelier", Description: "Mécanique", Sector: "s1", Grades: []string{"3e"}, Weeks: []string{week},
		Seats: 1, CommuneCode: "94028", Address: "3 rue", Lat: 48.79, Lon: 2.45,
	}}))
	pupil := ok(svc.RegisterPupil(ctx, m(), domain.RegisterPupilInput{
		SchoolUAI: "0941234A", Grade: "3e", ClassName: "3eA", FirstName: "Lina", LastName: "Benali", BirthDate: "2011-05-01",
		Guardians: []domain.Guardian{{Name: "Parent", Email: "p@example.fr", Phone: "0600000000"}},
	}))
	return ok(svc.Apply(ctx, m(), commands.ApplyInput{OfferID: offer, PupilID: pupil,
		SubmitInput: domain.SubmitInput{Weeks: []string{week}, Motivation: "motivée"}}))
}

func cli(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestToolsOverADataDirectory(t *testing.T) {
	dir := t.TempDir()
	placementIn(t, dir)
	if code, out, errOut := cli("verify", "--data-dir", dir); code != 0 || !strings.Contains(out, `"events": 6`) {
		t.Fatalf("verify: %d %s %s", code, out, errOut)
	}
	url := redistest.Mini(t).URL
	code, out, errOut := cli("replay", "--data-dir", dir, "--redis-url", url)
	if code != 0 || strings.Count(out, "is served") != 3 || !strings.Contains(errOut, "replay offers: 100%") {
		t.Fatalf("replay: %d %s %s", code, out, errOut)
	}
	if code, _, errOut := cli("replay", "--projection", "nope", "--data-dir", dir, "--redis-url", url); code == 0 || !strings.Contains(errOut, "no projection") {
		t.Fatalf("replay of an unknown projection: %d %s", code, errOut)
	}
	code, out, _ = cli("token", "--data-dir", dir, "--role", "school", "--subject", "0941234A", "--create-key")
	key, err := auth.LoadKey(dir)
	if err != nil || code != 0 {
		t.Fatalf("token: %d %v", code, err)
	}
	h, _ := auth.NewHMAC(key, nil)
	if p, err := h.Verify(strings.TrimSpace(out)); err != nil || p.Role != "school" || p.Subject != "0941234A" {
		t.Fatalf("the printed token does not verify with the data directory's key: %+v %v", p, err)
	}
	if code, _, _ := cli("token", "--data-dir", dir, "--role", "root"); code == 0 {
		t.Fatal("a token for an unknown role was printed")
	}
	if code, _, _ := cli("nope"); code != 2 {
		t.Fatalf("an unknown command: exit %d, want 2", code)
	}
}

// Flags may stand before, between or after the positional arguments.
func TestFlagsAnywhere(t *testing.T) {
	dir := t.TempDir()
	id := placementIn(t, dir)
	var outputs []string
	for _, args := range [][]string{
		{"audit", "--format", "csv", "--data-dir", dir, "application", id},
		{"audit", "application", id, "--format", "csv", "--data-dir", dir},
		{"audit", "--data-dir", dir, "application", "--format=csv", id},
		{"audit", "--format", "csv", "--data-dir", dir, "--", "application", id},
	} {
		code, out, errOut := cli(args...)
		if code != 0 || !strings.HasPrefix(out, "position,recorded_at,") || !strings.Contains(out, "ApplicationSubmitted") {
			t.Fatalf("%v: exit %d\n%s\n%s", args, code, out, errOut)
		}
		outputs = append(outputs, out)
	}
	for _, out := range outputs[1:] {
		if out != outputs[0] {
			t.Fatalf("the same audit printed differently with its flags elsewhere:\n%s\nvs\n%s", out, outputs[0])
		}
	}
	if code, out, _ := cli("audit", "application", id, "--data-dir", dir); code != 0 || !strings.Contains(out, `"application_id": "`+id+`"`) {
		t.Fatalf("audit without --format: JSON expected, exit %d\n%s", code, out)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		// after "--", a flag is an argument
		{[]string{"audit", "--data-dir", dir, "--", "application", id, "--format", "csv"}, "expected 2 arguments, got 4"},
		{[]string{"audit", "--data-dir", dir, "pupil", id}, `expected: audit application ID, got "pupil"`},
		{[]string{"audit", "--data-dir", dir, "application", id, "--format", "xml"}, "--format: json or csv"},
		{[]string{"token", "--role", "school", "extra"}, `unexpected argument "extra"`},
		{[]string{"verify", "--data-dir", dir, "extra"}, `unexpected argument "extra"`},
		{[]string{"audit", "application", id, "--nope"}, "flag provided but not defined: -nope"},
	} {
		if code, _, errOut := cli(c.args...); code != 1 && code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, %q; want an error saying %q", c.args, code, errOut, c.want)
		}
	}
}

// Every subcommand is in the table once, and the usage lists it.
func TestSubcommandTable(t *testing.T) {
	code, out, _ := cli("help")
	if code != 0 {
		t.Fatalf("help: exit %d", code)
	}
	seen := map[string]bool{}
	for _, c := range subcommands {
		if seen[c.name] || c.summary == "" || c.run == nil {
			t.Errorf("subcommand %q: listed twice, or without its summary or function", c.name)
		}
		seen[c.name] = true
		if !strings.Contains(out, "  "+c.name+" ") {
			t.Errorf("the usage does not list %q:\n%s", c.name, out)
		}
		// each answers --help with its own usage
		if code, _, errOut := cli(c.name, "--help"); code != 0 || !strings.Contains(errOut, "Usage: passerelle "+c.name) {
			t.Errorf("%s --help: exit %d\n%s", c.name, code, errOut)
		}
	}
	for _, name := range []string{"serve", "token", "replay", "verify", "audit", "eventstore-server"} {
		if !seen[name] {
			t.Errorf("subcommand %q is missing from the table", name)
		}
	}
}

// passerelle token prints a token the service will accept, or refuses: no
// key is created unless asked (the error names the directory looked in),
// no negative or zero lifetime, no subject-less token for a role that
// acts on its own resources.
func TestTokenRefusesWhatTheServiceWouldReject(t *testing.T) {
	dir := t.TempDir()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--role", "backoffice", "--subject", "agent-1"}, "no token key in the data directory " + abs},
		{[]string{"--role", "school"}, "--subject is required for the role school"},
		{[]string{"--role", "employer", "--create-key"}, "--subject is required for the role employer"},
		{[]string{"--role", "backoffice", "--ttl", "-1h", "--create-key"}, "--ttl must be positive"},
		{[]string{"--role", "backoffice", "--ttl", "0s", "--create-key"}, "--ttl must be positive"},
	} {
		code, out, errOut := cli(append([]string{"token", "--data-dir", dir}, c.args...)...)
		if code == 0 || out != "" || !strings.Contains(errOut, c.want) {
			t.Errorf("token %v: exit %d, printed %q, said %q; want a refusal saying %q", c.args, code, out, errOut, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, auth.KeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused token created a key: %v", err)
	}
	// roles acting on no particular resource need no subject
	code, out, errOut := cli("token", "--data-dir", dir, "--role", "statistician", "--create-key")
	key, err := auth.LoadKey(dir)
	if code != 0 || err != nil {
		t.Fatalf("token --create-key: exit %d %s %v", code, errOut, err)
	}
	h, _ := auth.NewHMAC(key, nil)
	if p, err := h.Verify(strings.TrimSpace(out)); err != nil || p.Role != "statistician" {
		t.Fatalf("the printed token does not verify with the created key: %+v %v", p, err)
	}
	// the key is kept: the next token is signed with it, unasked
	if code, out, _ := cli("token", "--data-dir", dir, "--role", "pupil", "--subject", "p-1"); code != 0 {
		t.Fatalf("token with the key present: exit %d", code)
	} else if _, err := h.Verify(strings.TrimSpace(out)); err != nil {
		t.Fatalf("the second token does not verify with the same key: %v", err)
	}
}

// A trusted proxy that is not an address or a network stops the service
// before it listens, from the flag or its environment variable.
func TestServeRefusesBadTrustedProxies(t *testing.T) {
	if code, _, errOut := cli("serve", "--data-dir", t.TempDir(), "--trusted-proxies", "172.30.240.0/24,caddy"); code == 0 || !strings.Contains(errOut, `--trusted-proxies: trusted proxies: "caddy"`) {
		t.Errorf("--trusted-proxies caddy: exit %d\n%s", code, errOut)
	}
	t.Setenv("PASSERELLE_TRUSTED_PROXIES", "10.0.0.0/99")
	if code, _, errOut := cli("serve", "--data-dir", t.TempDir()); code == 0 || !strings.Contains(errOut, `"10.0.0.0/99"`) {
		t.Errorf("PASSERELLE_TRUSTED_PROXIES=10.0.0.0/99: exit %d\n%s", code, errOut)
	}
}

// A seed seals its log as it writes: the log ends sealed whole, under
// seals made during the run and after it, and the figures it prints
// include the anonymous part of its memory.
func TestSeedSealsAsItWrites(t *testing.T) {
	defer func(d time.Duration) { sealEvery = d }(sealEvery)
	sealEvery = 50 * time.Millisecond
	dir := t.TempDir()
	code, out, errOut := cli("seed", "--departement", "2A", "--scale", "0.1", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("seed: %d %s %s", code, out, errOut)
	}
	var events, anon, peak int
	for line := range strings.SplitSeq(out, "\n") {
		if strings.HasPrefix(line, "seeded ") {
			_, _ = fmt.Sscanf(line, "seeded %d events", &events)
			_, after, _ := strings.Cut(line, "peak memory ")
			_, _ = fmt.Sscanf(after, "%d kB (anonymous: %d kB", &peak, &anon)
		}
	}
	if events == 0 || anon <= 0 || anon > peak {
		t.Fatalf("figures not printed as expected (events %d, anonymous %d kB, peak %d kB): %s", events, anon, peak, out)
	}
	code, out, errOut = cli("verify", "--data-dir", dir)
	var rep struct{ Events, Seals, Unsealed int }
	if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil {
		t.Fatalf("verify: %d %v %s %s", code, err, out, errOut)
	}
	if rep.Seals < 2 || rep.Unsealed != 0 || rep.Events != events+rep.Seals {
		t.Fatalf("a seeded log of %d events: %+v, want it sealed whole under several seals", events, rep)
	}
	if seedCutShort(dir) {
		t.Fatal("a seed that played its whole plan leaves its marker")
	}
	code, out, errOut = cli("seed", "--departement", "2A", "--scale", "0.1", "--data-dir", dir)
	if code == 0 || !strings.Contains(errOut, "already holds events") || strings.Contains(errOut, "cut short") {
		t.Fatalf("seed into a seeded instance: %d %s %s", code, out, errOut)
	}
}
