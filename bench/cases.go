package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"spine/shared/auth"
)

// Names of the measured cases (also the names --profile takes, and the files under .bench/).
const (
	caseRead        = "GET /api/tenants/{id} (cached)"
	caseRegister    = "POST /api/tenants"
	caseAuditOne    = "POST /api/audit-entries, 1 tenant"
	caseAuditMany   = "POST /api/audit-entries, 32 tenants"
	caseAuditRatio  = "audit append: 32 tenants ÷ 1 tenant"
	caseOutboxLat   = "outbox commit → audit entry @ steady rate"
	caseOutboxDrain = "outbox max drain (events/s)"
)

// caseSlug maps a case name to the short name used for files and --profile.
var caseSlug = map[string]string{
	caseRead: "read", caseRegister: "register", caseAuditOne: "audit-1", caseAuditMany: "audit-32",
	caseOutboxLat: "outbox-latency", caseOutboxDrain: "outbox-drain", caseCheck: "check",
	caseTokenIssue: "token", caseIntrospect: "introspect",
	caseOFREPSingle: "ofrep", caseOFREPBulk: "ofrep-bulk",
}

// audience is the token audience, the same as `make run`'s. The issuer is the handler's own
// http://127.0.0.1:<port>/api/connect, as in `make run` (the authorization server mounts at its
// path); tokens minted with the dev key carry it too.
const audience = "spine-api"

// mintTokens signs the platform-admin token with the dev key the handler trusts.
func (b *bench) mintTokens() error {
	s, err := auth.LoadDevSigner(b.keyDir)
	if err != nil {
		return err
	}
	b.signer = s
	b.adminToken, err = s.Mint(auth.TokenClaims{Issuer: b.issuer, Audience: audience, Subject: "bench-admin",
		PlatformAdmin: true, Scopes: []string{"tenant.read", "tenant.manage", "audit.read", "audit.write"}}, 2*time.Hour)
	return err
}

// tenantToken mints a token for one tenant with the audit scopes.
func (b *bench) tenantToken(id string) (string, error) {
	return b.signer.Mint(auth.TokenClaims{Issuer: b.issuer, Audience: audience, Subject: "bench-user",
		TenantID: id, Scopes: []string{"audit.write", "audit.read", "tenant.read"}}, 2*time.Hour)
}

// baseURL is the handler's address.
func (b *bench) baseURL() string { return fmt.Sprintf("http://127.0.0.1:%d", b.server.port) }

// do sends one request with the bearer token and returns the status and body.
func (b *bench) do(ctx context.Context, method, path, token string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, b.baseURL()+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// register creates one tenant with slug and returns its id.
func (b *bench) register(ctx context.Context, slug string) (string, error) {
	body, _ := json.Marshal(map[string]string{"name": "Bench " + slug, "slug": slug,
		"editionCode": b.seedEdition(), "ownerEmail": "owner@" + slug + ".example"})
	status, out, err := b.do(ctx, http.MethodPost, "/api/tenants", b.adminToken, body)
	if err != nil {
		return "", err
	}
	if status != http.StatusCreated {
		return "", fmt.Errorf("POST /api/tenants: %d %s", status, truncate(out, 300))
	}
	var t struct{ ID string }
	if err := json.Unmarshal(out, &t); err != nil || t.ID == "" {
		return "", fmt.Errorf("POST /api/tenants: no id in %s", truncate(out, 300))
	}
	return t.ID, nil
}

// seed registers opt.tenants tenants with 8 workers, waits until their events are drained, and
// reads each once so the cached read starts warm.
func (b *bench) seed(ctx context.Context) error {
	start := time.Now()
	ids := make([]string, b.opt.tenants)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(ids) {
					return
				}
				id, err := b.register(ctx, fmt.Sprintf("seed-%s-%d", b.runID, i))
				if err != nil {
					errs <- err
					return
				}
				ids[i] = id
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return fmt.Errorf("seeding tenants: %w", err)
	}
	b.tenantIDs = ids
	b.logf("seeded %d tenants in %s", len(ids), time.Since(start).Round(time.Millisecond))
	for _, id := range ids {
		if status, out, err := b.do(ctx, http.MethodGet, "/api/tenants/"+id, b.adminToken, nil); err != nil || status != http.StatusOK {
			return fmt.Errorf("GET /api/tenants/%s: %d %v %s", id, status, err, truncate(out, 200))
		}
	}
	return b.waitOutboxDrained(ctx, "seeding")
}

// readIDs are the tenant ids the read script rotates over (a placeholder before seeding: the echo
// ceiling answers any id).
func (b *bench) readIDs() []string {
	if len(b.tenantIDs) > 0 {
		return b.tenantIDs
	}
	return []string{"00000000-0000-0000-0000-000000000000"}
}

// caseTenantRead measures the cached tenant read with a real platform-admin token, round robin
// over every seeded tenant (all cached by the seeding reads).
func (b *bench) caseTenantRead(ctx context.Context) error {
	w := wrkRun{name: "read", baseURL: b.baseURL(), script: luaGetRotating("/api/tenants/", b.tenantIDs, b.adminToken)}
	r, err := b.measureWrk(ctx, caseRead, w)
	if err != nil {
		return err
	}
	b.res.add(row{Case: caseRead, Kind: kindCase, RPS: r.RPS, P50: ms(r.P50), P99: ms(r.P99), Ceiling: ceilEcho,
		Requests: r.Requests, Failures: r.failures(), NewSessions: r.NewSessions,
		Note: fmt.Sprintf("platform-admin token, round robin over %d cached tenants", len(b.tenantIDs))})
	b.pgStatsEnd(ctx, caseRead, r.Requests-r.failures(), "request")
	return nil
}

// caseRegister measures tenant registration: the tenant row, its provisioning steps and the
// TenantRegistered outbox row in one transaction, each request with a new slug.
func (b *bench) caseRegister(ctx context.Context) error {
	w := wrkRun{name: "register", baseURL: b.baseURL(), script: luaRegister(b.adminToken)}
	r, err := b.measureWrk(ctx, caseRegister, w)
	if err != nil {
		return err
	}
	b.res.add(row{Case: caseRegister, Kind: kindCase, RPS: r.RPS, P50: ms(r.P50), P99: ms(r.P99), Ceiling: ceilPG,
		Requests: r.Requests, Failures: r.failures(), NewSessions: r.NewSessions,
		Note: "tenant row + provisioning steps + outbox row in one transaction; its events are then drained to the audit consumer"})
	if err := b.waitOutboxDrained(ctx, "registration"); err != nil {
		return err
	}
	b.pgStatsEnd(ctx, caseRegister, r.Requests-r.failures(), "request")
	return nil
}

// auditWired reports whether the handler serves the audit API: its health lists the service and
// an append with a tenant token succeeds.
func (b *bench) auditWired(ctx context.Context) (bool, string, error) {
	status, out, err := b.do(ctx, http.MethodGet, "/api/health", "", nil)
	if err != nil || status != http.StatusOK {
		return false, "", fmt.Errorf("GET /api/health: %d %v", status, err)
	}
	var h struct{ Services []string }
	_ = json.Unmarshal(out, &h)
	if !slices.Contains(h.Services, "audit") {
		return false, "the handler does not serve the audit service yet (GET /api/health lists " + strings.Join(h.Services, ", ") + ")", nil
	}
	tok, err := b.tenantToken(b.tenantIDs[0])
	if err != nil {
		return false, "", err
	}
	status, out, err = b.do(ctx, http.MethodPost, "/api/audit-entries", tok, []byte(auditBody))
	switch {
	case err != nil:
		return false, "", err
	case status == http.StatusNotFound:
		return false, "POST /api/audit-entries answers 404: the audit routes are not mounted yet", nil
	case status/100 != 2:
		return false, "", fmt.Errorf("POST /api/audit-entries with a tenant token: %d %s", status, truncate(out, 300))
	}
	return true, "", nil
}

// caseAudit measures audit appends with tenant tokens: all to one tenant, then spread over 32.
func (b *bench) caseAudit(ctx context.Context) error {
	n := min(32, len(b.tenantIDs))
	tokens := make([]string, n)
	for i := range tokens {
		var err error
		if tokens[i], err = b.tenantToken(b.tenantIDs[i]); err != nil {
			return err
		}
	}
	for _, c := range []struct {
		name   string
		tokens []string
	}{{caseAuditOne, tokens[:1]}, {caseAuditMany, tokens}} {
		w := wrkRun{name: caseSlug[c.name], baseURL: b.baseURL(), script: luaAudit(c.tokens)}
		r, err := b.measureWrk(ctx, c.name, w)
		if err != nil {
			return err
		}
		b.res.add(row{Case: c.name, Kind: kindCase, RPS: r.RPS, P50: ms(r.P50), P99: ms(r.P99), Ceiling: ceilPG,
			Requests: r.Requests, Failures: r.failures(), NewSessions: r.NewSessions,
			Note: fmt.Sprintf("%d tenant token(s), round robin", len(c.tokens))})
		if err := b.waitOutboxDrained(ctx, c.name); err != nil {
			return err
		}
		b.pgStatsEnd(ctx, c.name, r.Requests-r.failures(), "request")
	}
	b.res.add(row{Case: caseAuditRatio, Kind: kindCase, RatioOf: []string{caseAuditMany, caseAuditOne},
		Note: fmt.Sprintf("no cross-tenant serialization: many tenants ≈ up to %d × one tenant, bounded by the ceiling", n)})
	return nil
}

// measureWrk warms up with the case's script, then measures it for the bench duration, taking a
// CPU profile of the handler meanwhile when --profile names the case.
func (b *bench) measureWrk(ctx context.Context, name string, w wrkRun) (wrkResult, error) {
	w.duration = b.opt.warmup
	warm := w
	warm.name = w.name + "-warmup"
	if _, err := b.runWrk(ctx, warm); err != nil {
		return wrkResult{}, err
	}
	if err := b.waitOutboxDrained(ctx, name+" warm-up"); err != nil {
		return wrkResult{}, err
	}
	w.duration = b.opt.duration
	sessions := b.pgSessions(ctx)
	b.pgStatsBegin(ctx, name, false) // the caller ends it once the case's events are drained
	stopProfile := b.startProfile(ctx, name, w.duration)
	r, err := b.runWrk(ctx, w)
	stopProfile()
	r.NewSessions = b.pgSessions(ctx) - sessions
	if err == nil && !b.server.alive() {
		err = fmt.Errorf("the handler exited during %s\n%s", name, tailFile(b.server.log, 20))
	}
	return r, err
}

// startProfile takes a CPU profile of the handler for (about) d while a case runs, if --profile
// names the case; the returned func waits for it and records `go tool pprof -top`.
func (b *bench) startProfile(ctx context.Context, name string, d time.Duration) func() {
	slug := caseSlug[name]
	if !slices.Contains(b.opt.profile, slug) || b.pprofPort == 0 {
		return func() {}
	}
	secs := max(1, int(d/time.Second)-1) // inside the run, clear of its ramp-up and tail
	file := filepath.Join(b.out, "profiles", slug+".pprof")
	done := make(chan error, 1)
	go func() {
		time.Sleep(500 * time.Millisecond)
		url := fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=%d", b.pprofPort, secs)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := (&http.Client{Timeout: time.Duration(secs+30) * time.Second}).Do(req)
		if err != nil {
			done <- err
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			done <- fmt.Errorf("pprof: %s", resp.Status)
			return
		}
		f, err := os.Create(file)
		if err != nil {
			done <- err
			return
		}
		_, err = io.Copy(f, resp.Body)
		f.Close()
		done <- err
	}()
	return func() {
		if err := <-done; err != nil {
			b.res.note("CPU profile of %s failed: %v", name, err)
			return
		}
		top := strings.TrimSuffix(file, ".pprof") + "-top.txt"
		out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=40", file).CombinedOutput()
		if err == nil {
			cum, _ := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-cum", "-nodecount=40", file).CombinedOutput()
			out = append(append(out, "\n--- sorted by cumulative ---\n"...), cum...)
		}
		_ = os.WriteFile(top, out, 0o644)
		b.res.mu.Lock()
		b.res.Profiles = append(b.res.Profiles, profileRef{Case: name, File: file, Top: top})
		b.res.mu.Unlock()
	}
}

// pgSessions is the number of sessions ever opened on the services' databases
// (pg_stat_database.sessions): its growth during a case is the handler's connection churn, each
// new session being a backend fork and a SCRAM handshake.
func (b *bench) pgSessions(ctx context.Context) int64 {
	db, err := b.stack.openAdmin(ctx, "postgres")
	if err != nil {
		return 0
	}
	defer db.Close()
	var n int64
	_ = db.QueryRowContext(ctx, `SELECT coalesce(sum(sessions), 0) FROM pg_stat_database WHERE datname = ANY($1::text[])`,
		"{"+strings.Join(b.stack.services(), ",")+"}").Scan(&n)
	return n
}

// waitOutboxDrained waits (bounded) until no service's outbox holds a due, unparked row, so the
// next case does not pay for the previous one's events. Not draining in time is noted, not fatal.
func (b *bench) waitOutboxDrained(ctx context.Context, after string) error {
	limit := 120 * time.Second
	if b.opt.smoke {
		limit = 20 * time.Second
	}
	start := time.Now()
	for _, svc := range b.stack.services() {
		db, err := b.stack.openAdmin(ctx, svc)
		if err != nil {
			return err
		}
		for {
			var n int64
			err := db.QueryRowContext(ctx, `SELECT count(*) FROM outbox WHERE parked_at IS NULL`).Scan(&n)
			if err != nil {
				db.Close()
				return fmt.Errorf("%s outbox: %w", svc, err)
			}
			if n == 0 {
				break
			}
			if time.Since(start) > limit {
				b.res.note("after %s the %s outbox still held %d rows after %s; the next case ran with that backlog", after, svc, n, limit)
				break
			}
			select {
			case <-ctx.Done():
				db.Close()
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
		db.Close()
	}
	if err := b.waitConsumersIdle(ctx, after, start.Add(limit)); err != nil {
		return err
	}
	if d := time.Since(start); d > time.Second {
		b.logf("outbox drained and consumed %s after %s", d.Round(100*time.Millisecond), after)
	}
	return nil
}

// waitConsumersIdle waits until the audit inbox stops growing: an empty outbox means the broker
// accepted every event, but the consumers may still be working through them (the in-process
// transport queues them), and the next case must not pay for that backlog.
func (b *bench) waitConsumersIdle(ctx context.Context, after string, deadline time.Time) error {
	db, err := b.stack.openAdmin(ctx, "audit")
	if err != nil {
		return nil // no audit service in this stack: nothing consumes
	}
	defer db.Close()
	last, stable := int64(-1), 0
	for stable < 3 {
		var n int64
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM inbox`).Scan(&n); err != nil {
			return fmt.Errorf("audit inbox: %w", err)
		}
		if n == last {
			stable++
		} else {
			stable, last = 0, n
		}
		if time.Now().After(deadline) {
			b.res.note("after %s the consumers were still busy at the deadline; the next case ran with that backlog", after)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
	return nil
}

// caseColdStart execs the handler opt.coldStarts times and reports the median time to the first 200.
func (b *bench) caseColdStart(ctx context.Context) error {
	var samples []float64
	for i := 1; i <= b.opt.coldStarts; i++ {
		d, err := b.coldStart(ctx, i)
		if err != nil {
			return err
		}
		samples = append(samples, float64(d)/float64(time.Millisecond))
	}
	b.res.ColdStart = &coldStart{SamplesMS: samples, MedianMS: median(samples)} // goal: goals[goalColdStart]
	return nil
}

// truncate shortens a response body for error messages.
func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
