package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"passerelle/domain"
	"passerelle/internal/testsupport/redistest"
)

// startStoreServer runs `passerelle eventstore-server` in its own process
// and returns its connection string.
func startStoreServer(t *testing.T) string {
	t.Helper()
	addr := freeAddr(t)
	list, _ := json.Marshal([]string{"eventstore-server", "--listen", addr, "--data-dir", t.TempDir()})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serveChildEnv+"="+string(list))
	logs := &syncWriter{}
	cmd.Stdout, cmd.Stderr = io.Discard, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if conn, err := net.Dial("tcp", addr); err == nil {
			_ = conn.Close()
			return "esdb://" + addr + "?tls=false"
		}
		if time.Now().After(deadline) {
			t.Fatalf("eventstore-server did not listen within 20 s\n%s", logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Two API processes and one projector share the protocol server and a real
// Redis: a command on one API is read on the other once the projector has
// projected it, the projector serves no API route, and a client's rate
// allowance is shared by both API processes.
func TestRoleSplit(t *testing.T) {
	r := redistest.Real(t)
	es := startStoreServer(t)
	shared := t.TempDir() // the personal-data keys every process uses
	const rate, burst = 2, 60
	common := []string{"--eventstore", es, "--redis-url", r.URL, "--data-dir", shared, "--auth=false", "--log-level", "warn"}
	limits := []string{"--rate-limit", fmt.Sprint(rate), "--rate-burst", fmt.Sprint(burst)}
	projector := startChild(t, append([]string{"serve", "--role", "projector"}, common...)...)
	t.Cleanup(func() { projector.stop(t) })
	start := time.Now()
	api1 := startChild(t, append(append([]string{"serve", "--role", "api"}, common...), limits...)...)
	t.Cleanup(func() { api1.stop(t) })
	api2 := startChild(t, append(append([]string{"serve", "--role", "api"}, common...), limits...)...)
	t.Cleanup(func() { api2.stop(t) })
	sent := 0
	must := func(c *child, status int, method, path string, body any) map[string]any {
		t.Helper()
		sent++
		return c.must(t, status, method, path, body)
	}

	must(api1, 201, "POST", "/v1/schools", map[string]any{"uai": "0941234A", "name": "Collège Danton", "kind": "college",
		"commune_code": "94081", "education_priority": "rep_plus", "qpv": false})
	emp := must(api2, 201, "POST", "/v1/employers", map[string]any{"name": "Garage", "siret": siret(0), "kind": "company",
		"commune_code": "94081", "address": "2 av. Youri Gagarine"})["id"].(string)
	week := weekAhead(10)
	offer := must(api1, 201, "POST", "/v1/offers", map[string]any{"employer_id": emp, "title": "Atelier", "description": "Découverte",
		"sector": "s2", "grades": []string{"3e"}, "weeks": []string{week}, "seats": 2, "commune_code": "94081",
		"address": "2 av. Youri Gagarine", "lat": 48.787, "lon": 2.392})["id"].(string)
	pupil := must(api2, 201, "POST", "/v1/pupils", map[string]any{"school_uai": "0941234A", "grade": "3e", "class_name": "3eC",
		"first_name": "Lina", "last_name": "Test", "birth_date": "2011-09-01",
		"guardians": []map[string]string{{"name": "Parent", "email": "p@example.fr", "phone": "0611111111"}}})["id"].(string)
	app := must(api1, 201, "POST", "/v1/offers/"+offer+"/applications", map[string]any{"pupil_id": pupil, "weeks": []string{week},
		"motivation": "Motivée."})["id"].(string)
	must(api2, 200, "POST", "/v1/applications/"+app+"/accept", nil)
	conf := must(api1, 200, "POST", "/v1/applications/"+app+"/confirm", nil)
	got := must(api2, 200, "GET", "/v1/applications/"+app+"?min_position="+conf["position"].(string), nil)
	if got["status"] != "confirmed" {
		t.Fatalf("read on the other API process: %v", got)
	}
	must(api1, 200, "GET", fmt.Sprintf("/v1/conventions/%s?min_position=%s", conf["convention_id"], conf["position"]), nil)
	// the pupil's personal data, sealed by one process, is opened by the other
	profile := must(api2, 200, "GET", "/v1/pupils/"+pupil, nil)
	if profile["first_name"] != "Lina" {
		t.Fatalf("pupil profile on the other process: %v", profile)
	}
	if st, _ := projector.do("GET", "/v1/offers", nil); st != 404 {
		t.Fatalf("the projector serves the API: %d", st)
	}
	if st, _ := api1.do("GET", "/readyz", nil); st != 200 {
		t.Fatalf("api readiness: %d", st)
	}

	// the rate: one allowance across both processes (the /healthz polls
	// while the processes started spent some of it too)
	passed := sent
	for i := range 2 * burst {
		if st, _ := []*child{api1, api2}[i%2].do("GET", "/v1/offers/"+offer, nil); st != 429 {
			passed++
		}
	}
	allowed := burst + int(time.Since(start).Seconds()*rate) + 1
	if passed > allowed {
		t.Fatalf("%d requests passed across two API processes; one shared allowance is %d", passed, allowed)
	}
	if passed < burst/2 {
		t.Fatalf("only %d requests passed of a burst of %d", passed, burst)
	}
}

// weekAhead is the ISO week n weeks from now.
func weekAhead(n int) string { return domain.WeekOf(time.Now().AddDate(0, 0, 7*n)) }
