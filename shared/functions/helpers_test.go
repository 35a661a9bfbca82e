package functions

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"spine/shared/problem"
)

// cloudEvent is the body of testdata/host-protocol/servicebus-invocation.json's message.
const cloudEvent = `{"specversion":"1.0","id":"01936a52-8f7e-7c3a-9d4e-5b6a7c8d9e0f","source":"/services/tenants","type":"TenantRegistered","subject":"01936a52-8f7e-7c3a-9d4e-000000000001","time":"2026-11-26T20:00:09.5Z","datacontenttype":"application/json","tenantid":"01936a52-8f7e-7c3a-9d4e-000000000001","traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","data":{"tenantId":"01936a52-8f7e-7c3a-9d4e-000000000001","name":"Contoso","slug":"contoso","editionCode":"standard"}}`

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// exampleRequest builds the host's request for the example file name, posted to /<function>.
func exampleRequest(t testing.TB, function, file string) *http.Request {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/"+function, bytes.NewReader(readTestdata(t, filepath.Join("host-protocol", file))))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderInvocationID, "6f3e2a8c-3c1b-4bde-9f5e-1d2c3b4a5f60")
	req.Header.Set(HeaderHostVersion, "4.x")
	req.Header.Set("User-Agent", "Azure-Functions-Host/4.x")
	return req
}

func decodeExample(t testing.TB, function, file string) *Invocation {
	t.Helper()
	inv, err := DecodeInvocation(exampleRequest(t, function, file), 0)
	if err != nil {
		t.Fatalf("decode %s: %v", file, err)
	}
	return inv
}

// jsonValue decodes JSON text with numbers kept as written.
func jsonValue(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after JSON value")
	}
	return v, nil
}

// jsonEqual reports whether a and b are JSON texts of equal values.
func jsonEqual(a, b []byte) bool {
	va, err := jsonValue(a)
	if err != nil {
		return false
	}
	vb, err := jsonValue(b)
	if err != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// wantProblem fails t unless err is a *problem.Problem with status and code.
func wantProblem(t testing.TB, err error, status int, code string) *problem.Problem {
	t.Helper()
	p, ok := problem.As(err)
	if !ok {
		t.Fatalf("error %v (%T) is not a *problem.Problem", err, err)
	}
	if p.Status != status || p.Code != code {
		t.Fatalf("problem = %d %q, want %d %q (%v)", p.Status, p.Code, status, code, err)
	}
	return p
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the JSON log records written so far.
func (b *syncBuffer) lines(t testing.TB) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}
