package main

import (
	"bytes"
	"context"
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

func TestToolsOverADataDirectory(t *testing.T) {
	dir := t.TempDir()
	s, err := embedded.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	svc := commands.NewService(s, refdata.MustLoad())
	m := commands.Meta{CommandID: "c1", Now: time.Now()}
	if _, err := svc.RegisterEmployer(context.Background(), m, domain.RegisterEmployerInput{Name: "E", SIRET: "73282932000074", Kind: "public", CommuneCode: "94028", Address: "a"}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	cli := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(context.Background(), args, &out, &errOut)
		return code, out.String(), errOut.String()
	}
	if code, out, errOut := cli("verify", "--data-dir", dir); code != 0 || !strings.Contains(out, `"events": 1`) {
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
	code, out, _ = cli("token", "--data-dir", dir, "--role", "school", "--subject", "0941234A")
	key, err := auth.LoadOrCreateKey(dir)
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
