// Package kvfake is a fake of Azure Key Vault's secrets REST API, over TLS, for tests and the
// local stack. It speaks the wire protocol the azsecrets SDK uses (api-version 2026-04-01 shapes,
// dates as unix seconds), so the real client and its bearer-challenge policy run against it:
//
//   - a request without "Authorization: Bearer …" gets 401 and Key Vault's challenge
//     (WWW-Authenticate: Bearer authorization="https://login.microsoftonline.com/<tenant>",
//     resource="https://vault.azure.net"); any bearer token is then accepted;
//   - GET /secrets/{name}[/] (latest version), GET /secrets/{name}/{version},
//     PUT /secrets/{name} (a new version, a random 32-hex-digit id),
//     GET /secrets/{name}/versions (values left out; paged with maxresults and nextLink),
//     PATCH /secrets/{name}/{version} (enabled, nbf, exp, contentType, tags),
//     DELETE /secrets/{name} (the name then answers 404, and a PUT to it 409 until purged),
//     DELETE /deletedsecrets/{name} (purge);
//   - errors as Key Vault writes them: {"error":{"code":"SecretNotFound","message":…}};
//   - fault injection (InjectFault): the next N requests answer 429 with Retry-After, or a 5xx.
//
// It is a fake: no RBAC or access policies (any token is accepted), no soft-delete recovery, no
// HSM, keys or certificates, no backup/restore, no throttling of its own, no expiry enforcement.
// Run serves it as a process (handler keyvault-fake) with a self-signed certificate and
// optional persistence to a JSON file.
package kvfake

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DevTenantID is the tenant the challenge names unless Options.TenantID says otherwise.
const DevTenantID = "72f988bf-0000-4000-8000-00000000f4ce"

// Limits Key Vault enforces that the fake enforces too.
const (
	maxPageSize   = 25    // maxresults of a list
	maxValueBytes = 25600 // a secret's value (25 KiB)
	maxTags       = 15
)

// Options configure a Server. The zero value is an in-memory vault.
type Options struct {
	// DataFile, when set, is where the vault is kept (JSON, mode 0600): read by New, rewritten
	// after every change, so a restarted process has the same secrets.
	DataFile string
	// PageSize is how many versions a list page holds when the request names no maxresults
	// (default 25, Key Vault's maximum).
	PageSize int
	// TenantID is the tenant the bearer challenge names (default DevTenantID).
	TenantID string
	// Logger, when set, gets one line per request: method, path, status (never a body).
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Fault makes the next Count authenticated requests answer Status (429, 500, 503, …) instead of
// being served. RetryAfter is sent as Retry-After (whole seconds) when Status is 429 or 503.
type Fault struct {
	Status     int
	Count      int
	RetryAfter int
}

// Server is the fake vault, an http.Handler. Safe for concurrent use.
type Server struct {
	opts Options

	mu         sync.Mutex
	data       store
	faults     []Fault
	requests   int
	challenges int
}

// store is the vault's content, also the data file's format.
type store struct {
	Secrets map[string]*secret `json:"secrets"`
	Deleted map[string]*secret `json:"deleted"`
}

type secret struct {
	Versions  []*version `json:"versions"` // in creation order
	DeletedAt int64      `json:"deletedAt,omitempty"`
}

type version struct {
	ID          string            `json:"id"`
	Value       string            `json:"value"`
	ContentType string            `json:"contentType,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	Enabled     bool              `json:"enabled"`
	Created     int64             `json:"created"`
	Updated     int64             `json:"updated"`
	NotBefore   *int64            `json:"nbf,omitempty"`
	Expires     *int64            `json:"exp,omitempty"`
}

// New returns a fake vault, loading Options.DataFile when it exists.
func New(opts Options) (*Server, error) {
	if opts.PageSize <= 0 || opts.PageSize > maxPageSize {
		opts.PageSize = maxPageSize
	}
	if opts.TenantID == "" {
		opts.TenantID = DevTenantID
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, data: store{Secrets: map[string]*secret{}, Deleted: map[string]*secret{}}}
	if opts.DataFile != "" {
		raw, err := os.ReadFile(opts.DataFile)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("kvfake: data file: %w", err)
		default:
			if err := json.Unmarshal(raw, &s.data); err != nil {
				return nil, fmt.Errorf("kvfake: data file %s is not a vault: %w", opts.DataFile, err)
			}
			if s.data.Secrets == nil {
				s.data.Secrets = map[string]*secret{}
			}
			if s.data.Deleted == nil {
				s.data.Deleted = map[string]*secret{}
			}
		}
	}
	return s, nil
}

// InjectFault queues f: after the faults queued before it are spent, the next f.Count
// authenticated requests answer f.Status.
func (s *Server) InjectFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Count > 0 {
		s.faults = append(s.faults, f)
	}
}

// Requests is the number of authenticated requests received (faulted ones included).
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Challenges is the number of requests answered with the bearer challenge.
func (s *Server) Challenges() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.challenges
}

var nameRE = regexp.MustCompile(`^[0-9A-Za-z-]{1,127}$`)

// ServeHTTP serves the secrets API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	s.serve(rec, r)
	if s.opts.Logger != nil {
		s.opts.Logger.Info("keyvault-fake", "method", r.Method, "path", r.URL.Path, "status", rec.status)
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || strings.TrimSpace(tok) == "" {
		s.mu.Lock()
		s.challenges++
		s.mu.Unlock()
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(
			`Bearer authorization="https://login.microsoftonline.com/%s", resource="https://vault.azure.net"`, s.opts.TenantID))
		writeError(w, http.StatusUnauthorized, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if len(s.faults) > 0 {
		f := &s.faults[0]
		if f.Count--; f.Count <= 0 {
			s.faults = s.faults[1:]
		}
		if f.Status == http.StatusTooManyRequests || f.Status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", strconv.Itoa(max(f.RetryAfter, 0)))
		}
		code := "Throttled"
		if f.Status != http.StatusTooManyRequests {
			code = "ServiceUnavailable"
		}
		writeError(w, f.Status, code, "Injected fault.")
		return
	}
	if r.URL.Query().Get("api-version") == "" {
		writeError(w, http.StatusBadRequest, "BadParameter", "The request URI contains an invalid API version.")
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	base := "https://" + r.Host
	switch {
	case len(parts) == 2 && parts[0] == "secrets":
		switch r.Method {
		case http.MethodGet:
			s.get(w, base, parts[1], "")
		case http.MethodPut:
			s.set(w, r, base, parts[1])
		case http.MethodDelete:
			s.delete(w, base, parts[1])
		default:
			methodNotAllowed(w)
		}
	case len(parts) == 3 && parts[0] == "secrets" && parts[2] == "versions":
		if r.Method != http.MethodGet {
			methodNotAllowed(w)
			return
		}
		s.list(w, r, base, parts[1])
	case len(parts) == 3 && parts[0] == "secrets":
		switch r.Method {
		case http.MethodGet:
			s.get(w, base, parts[1], parts[2])
		case http.MethodPatch:
			s.update(w, r, base, parts[1], parts[2])
		default:
			methodNotAllowed(w)
		}
	case len(parts) == 2 && parts[0] == "deletedsecrets" && r.Method == http.MethodDelete:
		s.purge(w, parts[1])
	case len(parts) == 3 && parts[0] == "deletedsecrets" && parts[2] == "recover" && r.Method == http.MethodPost:
		s.recover(w, base, parts[1])
	default:
		writeError(w, http.StatusNotFound, "NotFound", "The requested resource is not supported by this fake.")
	}
}

func (s *Server) get(w http.ResponseWriter, base, name, ver string) {
	sec, ok := s.data.Secrets[name]
	if !ok || len(sec.Versions) == 0 {
		notFound(w, name)
		return
	}
	v := sec.Versions[len(sec.Versions)-1]
	if ver != "" {
		if v = sec.find(ver); v == nil {
			notFound(w, name)
			return
		}
	}
	if !v.Enabled {
		writeJSON(w, http.StatusForbidden, map[string]any{"error": map[string]any{
			"code": "Forbidden", "message": "Operation get is not allowed on a disabled secret.",
			"innererror": map[string]string{"code": "SecretDisabled"},
		}})
		return
	}
	writeJSON(w, http.StatusOK, bundle(base, name, v, true))
}

// setParams and updateParams are azsecrets' SetSecretParameters and
// UpdateSecretPropertiesParameters on the wire.
type attributes struct {
	Enabled   *bool  `json:"enabled"`
	NotBefore *int64 `json:"nbf"`
	Expires   *int64 `json:"exp"`
}

type setParams struct {
	Value       *string            `json:"value"`
	ContentType *string            `json:"contentType"`
	Attributes  *attributes        `json:"attributes"`
	Tags        map[string]*string `json:"tags"`
}

func (s *Server) set(w http.ResponseWriter, r *http.Request, base, name string) {
	if !nameRE.MatchString(name) {
		writeError(w, http.StatusBadRequest, "BadParameter", "The secret name is invalid: 1-127 letters, digits and dashes.")
		return
	}
	var p setParams
	if err := decode(r, &p); err != nil || p.Value == nil {
		writeError(w, http.StatusBadRequest, "BadParameter", "The request body must be JSON with a value.")
		return
	}
	if len(*p.Value) > maxValueBytes || len(p.Tags) > maxTags {
		writeError(w, http.StatusBadRequest, "BadParameter", "The value is larger than 25 KiB or there are more than 15 tags.")
		return
	}
	if _, deleted := s.data.Deleted[name]; deleted {
		writeError(w, http.StatusConflict, "Conflict", fmt.Sprintf("Secret %s is currently in a deleted but recoverable state, "+
			"and its name cannot be reused; in this state, the secret can only be recovered or purged.", name))
		return
	}
	now := s.opts.Now().Unix()
	v := &version{ID: newVersionID(), Value: *p.Value, Enabled: true, Created: now, Updated: now, Tags: tagsOf(p.Tags)}
	if p.ContentType != nil {
		v.ContentType = *p.ContentType
	}
	if a := p.Attributes; a != nil {
		if a.Enabled != nil {
			v.Enabled = *a.Enabled
		}
		v.NotBefore, v.Expires = a.NotBefore, a.Expires
	}
	sec := s.data.Secrets[name]
	if sec == nil {
		sec = &secret{}
		s.data.Secrets[name] = sec
	}
	sec.Versions = append(sec.Versions, v)
	if !s.save(w) {
		return
	}
	writeJSON(w, http.StatusOK, bundle(base, name, v, true))
}

func (s *Server) update(w http.ResponseWriter, r *http.Request, base, name, ver string) {
	sec, ok := s.data.Secrets[name]
	var v *version
	if ok {
		v = sec.find(ver)
	}
	if v == nil {
		notFound(w, name)
		return
	}
	var p setParams
	if err := decode(r, &p); err != nil {
		writeError(w, http.StatusBadRequest, "BadParameter", "The request body must be JSON.")
		return
	}
	if p.Value != nil {
		writeError(w, http.StatusBadRequest, "BadParameter", "The value of a secret version cannot be changed; set a new version.")
		return
	}
	if len(p.Tags) > maxTags {
		writeError(w, http.StatusBadRequest, "BadParameter", "There are more than 15 tags.")
		return
	}
	if p.ContentType != nil {
		v.ContentType = *p.ContentType
	}
	if p.Tags != nil {
		v.Tags = tagsOf(p.Tags)
	}
	if a := p.Attributes; a != nil {
		if a.Enabled != nil {
			v.Enabled = *a.Enabled
		}
		if a.NotBefore != nil {
			v.NotBefore = a.NotBefore
		}
		if a.Expires != nil {
			v.Expires = a.Expires
		}
	}
	v.Updated = s.opts.Now().Unix()
	if !s.save(w) {
		return
	}
	writeJSON(w, http.StatusOK, bundle(base, name, v, false))
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, base, name string) {
	q := r.URL.Query()
	size := s.opts.PageSize
	if m := q.Get("maxresults"); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 1 || n > maxPageSize {
			writeError(w, http.StatusBadRequest, "BadParameter", "maxresults must be between 1 and 25.")
			return
		}
		size = n
	}
	skip := 0
	if t := q.Get("$skiptoken"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "BadParameter", "The skip token is invalid.")
			return
		}
		skip = n
	}
	// A name that does not exist lists nothing (Key Vault answers an empty list too).
	var versions []*version
	if sec, ok := s.data.Secrets[name]; ok {
		versions = sec.Versions
	}
	page := []map[string]any{}
	for i := skip; i < len(versions) && i < skip+size; i++ {
		page = append(page, bundle(base, name, versions[i], false))
	}
	var next any // JSON null on the last page, as Key Vault writes it
	if skip+size < len(versions) {
		nq := url.Values{}
		nq.Set("api-version", q.Get("api-version"))
		nq.Set("$skiptoken", strconv.Itoa(skip+size))
		nq.Set("maxresults", strconv.Itoa(size))
		next = base + "/secrets/" + url.PathEscape(name) + "/versions?" + nq.Encode()
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": page, "nextLink": next})
}

func (s *Server) delete(w http.ResponseWriter, base, name string) {
	sec, ok := s.data.Secrets[name]
	if !ok || len(sec.Versions) == 0 {
		notFound(w, name)
		return
	}
	now := s.opts.Now()
	sec.DeletedAt = now.Unix()
	delete(s.data.Secrets, name)
	s.data.Deleted[name] = sec
	if !s.save(w) {
		return
	}
	b := bundle(base, name, sec.Versions[len(sec.Versions)-1], false)
	b["recoveryId"] = base + "/deletedsecrets/" + url.PathEscape(name)
	b["deletedDate"] = now.Unix()
	b["scheduledPurgeDate"] = now.Add(7 * 24 * time.Hour).Unix()
	writeJSON(w, http.StatusOK, b)
}

func (s *Server) recover(w http.ResponseWriter, base, name string) {
	sec, ok := s.data.Deleted[name]
	if !ok {
		writeError(w, http.StatusNotFound, "SecretNotFound", fmt.Sprintf("Deleted Secret not found: %s", name))
		return
	}
	if _, live := s.data.Secrets[name]; live {
		writeError(w, http.StatusConflict, "Conflict", fmt.Sprintf("Secret %s is not deleted.", name))
		return
	}
	sec.DeletedAt = 0
	delete(s.data.Deleted, name)
	s.data.Secrets[name] = sec
	if !s.save(w) {
		return
	}
	writeJSON(w, http.StatusOK, bundle(base, name, sec.Versions[len(sec.Versions)-1], false))
}

func (s *Server) purge(w http.ResponseWriter, name string) {
	if _, ok := s.data.Deleted[name]; !ok {
		writeError(w, http.StatusNotFound, "SecretNotFound", fmt.Sprintf("Deleted Secret not found: %s", name))
		return
	}
	delete(s.data.Deleted, name)
	if !s.save(w) {
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (sec *secret) find(ver string) *version {
	for _, v := range sec.Versions {
		if v.ID == ver {
			return v
		}
	}
	return nil
}

// bundle is a SecretBundle (withValue) or a SecretItem on the wire.
func bundle(base, name string, v *version, withValue bool) map[string]any {
	attrs := map[string]any{
		"enabled": v.Enabled, "created": v.Created, "updated": v.Updated,
		"recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 7,
	}
	if v.NotBefore != nil {
		attrs["nbf"] = *v.NotBefore
	}
	if v.Expires != nil {
		attrs["exp"] = *v.Expires
	}
	b := map[string]any{"id": base + "/secrets/" + url.PathEscape(name) + "/" + v.ID, "attributes": attrs}
	if v.ContentType != "" {
		b["contentType"] = v.ContentType
	}
	if len(v.Tags) > 0 {
		b["tags"] = v.Tags
	}
	if withValue {
		b["value"] = v.Value
	}
	return b
}

// save writes the data file (if any) atomically with mode 0600; on failure it answers 500.
func (s *Server) save(w http.ResponseWriter) bool {
	if s.opts.DataFile == "" {
		return true
	}
	raw, err := json.MarshalIndent(s.data, "", "  ")
	if err == nil {
		err = writeFileAtomic(s.opts.DataFile, raw)
	}
	if err != nil {
		if s.opts.Logger != nil {
			s.opts.Logger.Error("keyvault-fake: saving the data file failed", "error", err.Error())
		}
		writeError(w, http.StatusInternalServerError, "InternalError", "The fake could not save its data file.")
		return false
	}
	return true
}

func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".kvfake-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func tagsOf(t map[string]*string) map[string]string {
	if len(t) == 0 {
		return nil
	}
	out := make(map[string]string, len(t))
	for k, v := range t {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

func newVersionID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b)
}

func decode(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return err
	}
	return json.Unmarshal(body, v)
}

func notFound(w http.ResponseWriter, name string) {
	writeError(w, http.StatusNotFound, "SecretNotFound", fmt.Sprintf(
		"A secret with (name/id) %s was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command.", name))
}

func methodNotAllowed(w http.ResponseWriter) {
	writeError(w, http.StatusMethodNotAllowed, "BadParameter", "The method is not allowed on this resource.")
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("x-ms-keyvault-service-version", "fake")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}
