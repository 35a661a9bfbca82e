package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// wrkResult is what one wrk run measured.
type wrkResult struct {
	RPS      float64       `json:"rps"`
	P50      time.Duration `json:"-"`
	P99      time.Duration `json:"-"`
	Requests int64         `json:"requests"`
	// Non2xx counts responses outside 2xx/3xx; SocketErrors counts connect, read, write and timeout errors.
	Non2xx       int64 `json:"non2xx"`
	SocketErrors int64 `json:"socketErrors"`
	// NewSessions is how many PostgreSQL sessions the handler opened during the run (set by measureWrk).
	NewSessions int64 `json:"newSessions"`
}

// failures is the number of requests that did not get a 2xx/3xx answer.
func (r wrkResult) failures() int64 { return r.Non2xx + r.SocketErrors }

// check is the harness's only verdict on a load run: some requests succeeded and at most 1% failed.
func (r wrkResult) check() error {
	ok := r.Requests - r.Non2xx
	switch {
	case r.Requests == 0 || ok <= 0:
		return fmt.Errorf("no successful request (%d requests, %d non-2xx, %d socket errors)", r.Requests, r.Non2xx, r.SocketErrors)
	case float64(r.failures()) > 0.01*float64(r.Requests):
		return fmt.Errorf("%d of %d requests failed (%d non-2xx, %d socket errors): above 1%%",
			r.failures(), r.Requests, r.Non2xx, r.SocketErrors)
	}
	return nil
}

var (
	wrkRPSRe     = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`)
	wrkTotalRe   = regexp.MustCompile(`(?m)^\s*(\d+) requests in `)
	wrkPctRe     = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s|m)\s*$`)
	wrkNon2xxRe  = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses:\s+(\d+)`)
	wrkSocketsRe = regexp.MustCompile(`(?m)^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// parseWrk reads the output of `wrk --latency`: Requests/sec, the request count, the 50% and 99%
// lines of the Latency Distribution (us, ms, s or m), and the non-2xx and socket error counts.
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	m := wrkRPSRe.FindStringSubmatch(out)
	if m == nil {
		return r, errors.New("wrk output has no Requests/sec line")
	}
	r.RPS, _ = strconv.ParseFloat(m[1], 64)
	if m := wrkTotalRe.FindStringSubmatch(out); m != nil {
		r.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	}
	found := 0
	for _, m := range wrkPctRe.FindAllStringSubmatch(out, -1) {
		d, err := parseDurationUnit(m[2], m[3])
		if err != nil {
			return r, err
		}
		if m[1] == "50" {
			r.P50 = d
		} else {
			r.P99 = d
		}
		found++
	}
	if found != 2 {
		return r, errors.New("wrk output has no 50%/99% latency lines (run it with --latency)")
	}
	if m := wrkNon2xxRe.FindStringSubmatch(out); m != nil {
		r.Non2xx, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := wrkSocketsRe.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.ParseInt(s, 10, 64)
			r.SocketErrors += n
		}
	}
	return r, nil
}

// parseDurationUnit converts wrk's "1.44" + "ms" into a duration.
func parseDurationUnit(num, unit string) (time.Duration, error) {
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("latency %q: %w", num+unit, err)
	}
	scale := map[string]float64{"us": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9}[unit]
	return time.Duration(v * scale), nil
}

// wrkRun is one wrk invocation: URL base, a Lua script, and how long.
type wrkRun struct {
	name     string // case name, for files and messages
	baseURL  string // http://127.0.0.1:port
	script   string // Lua source (written to .bench/lua/<name>.lua)
	duration time.Duration
	// connections overrides the bench's connection count (0: --connections), for a case that
	// measures latency below saturation.
	connections int
}

// runWrk runs wrk pinned to the generator CPU with the bench's connection count, saves its output
// under .bench/wrk/, and parses it. A crash or unparseable output is an error; so is a run failing
// check().
func (b *bench) runWrk(ctx context.Context, w wrkRun) (wrkResult, error) {
	b.wrkRuns++
	script := strings.ReplaceAll(w.script, runPlaceholder, fmt.Sprintf("%s%d", b.runID, b.wrkRuns))
	luaPath := filepath.Join(b.out, "lua", w.name+".lua")
	if err := os.WriteFile(luaPath, []byte(script), 0o600); err != nil {
		return wrkResult{}, err
	}
	secs := max(1, int(w.duration.Round(time.Second)/time.Second))
	conns := b.opt.connections
	if w.connections > 0 {
		conns = w.connections
	}
	threads := min(b.pin.genThreads, conns)
	cmd := b.tools.command(ctx, b.pin.generator, b.tools.wrk,
		"-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns), "-d", fmt.Sprintf("%ds", secs),
		"--timeout", "5s", "--latency", "-s", luaPath, w.baseURL)
	out, err := cmd.CombinedOutput()
	_ = os.WriteFile(filepath.Join(b.out, "wrk", w.name+".txt"), out, 0o644)
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk %s: %w\n%s", w.name, err, tail(string(out), 20))
	}
	r, err := parseWrk(string(out))
	if err != nil {
		return r, fmt.Errorf("wrk %s: %w\n%s", w.name, err, tail(string(out), 20))
	}
	if err := r.check(); err != nil {
		return r, fmt.Errorf("wrk %s: %w (output in %s)", w.name, err, filepath.Join(b.out, "wrk", w.name+".txt"))
	}
	return r, nil
}

// luaStrings renders a Lua table of string literals.
func luaStrings(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s) // Go's escapes for ASCII are valid Lua escapes
	}
	return "{" + strings.Join(q, ",\n  ") + "}"
}

// luaGetRotating is a GET of pathPrefix + ids[i], round robin over ids, with one bearer token.
// The tenant read and the bare echo ceiling use the same script, so wrk does the same work for both.
func luaGetRotating(pathPrefix string, ids []string, token string) string {
	return fmt.Sprintf(`-- generated by bench: GET %s<id>, round robin over %d ids
local ids = %s
local headers = {["Authorization"] = %q}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", %q .. ids[(n %% #ids) + 1], headers)
end
`, pathPrefix, len(ids), luaStrings(ids), "Bearer "+token, pathPrefix)
}

// runPlaceholder in a script is replaced by an id unique to each wrk invocation (warm-up and
// measured runs of one case included).
const runPlaceholder = "__RUN__"

// luaRegister is POST /api/tenants with a body whose slug is unique per request: the wrk
// invocation's id, the wrk thread and a per-thread counter (lowercase, [a-z0-9-], under 63 characters),
// on the given edition.
func luaRegister(token, edition string) string {
	return fmt.Sprintf(`-- generated by bench: POST /api/tenants, a unique slug per request
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
local headers = {["Authorization"] = %q, ["Content-Type"] = "application/json"}
local n = 0
request = function()
  n = n + 1
  local slug = %q .. "-" .. tostring(tid or 0) .. "-" .. n
  local body = '{"name":"Bench ' .. slug .. '","slug":"' .. slug .. '","editionCode":"' .. %q .. '","ownerEmail":"owner@' .. slug .. '.example"}'
  return wrk.format("POST", "/api/tenants", headers, body)
end
`, "Bearer "+token, "reg-"+runPlaceholder, edition)
}

// auditBody is the audit entry every append sends.
const auditBody = `{"actor":{"type":"user","id":"u1"},"action":"document.read","resource":{"type":"document","id":"d1"},"payload":{"k":"v"}}`

// luaAudit is POST /api/audit-entries with the tenant token picked round robin from tokens (one
// token: every append goes to one tenant; 32: spread over 32 tenants).
func luaAudit(tokens []string) string {
	bearer := make([]string, len(tokens))
	for i, t := range tokens {
		bearer[i] = "Bearer " + t
	}
	return fmt.Sprintf(`-- generated by bench: POST /api/audit-entries over %d tenant token(s)
local tokens = %s
local body = %q
local headers = {["Content-Type"] = "application/json"}
local n = 0
request = function()
  n = n + 1
  headers["Authorization"] = tokens[(n %% #tokens) + 1]
  return wrk.format("POST", "/api/audit-entries", headers, body)
end
`, len(tokens), luaStrings(bearer), auditBody)
}
