package idempotency

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

// TestWithoutMembers_TheSecretLeavesNoHashAndDoesNotMakeAnotherRequest: the hash of a request
// with a left-out member equals the hash of the same request with any other value there, and
// differs when another member changes.
func TestWithoutMembers_TheSecretLeavesNoHashAndDoesNotMakeAnotherRequest(t *testing.T) {
	hash := func(body string, without ...string) []byte {
		e := echo.New()
		req := httptest.NewRequest(http.MethodPost, "/api/integrations", strings.NewReader(body))
		c := e.NewContext(req, httptest.NewRecorder())
		h, err := requestHash(c, without)
		if err != nil {
			t.Fatal(err)
		}
		if rest, _ := io.ReadAll(c.Request().Body); string(rest) != body {
			t.Fatalf("the body was not put back: %q", rest)
		}
		return h
	}
	a := hash(`{"name":"crm","secret":"hunter2"}`, "secret")
	b := hash(`{"secret":"another","name":"crm"}`, "secret")
	if !bytes.Equal(a, b) {
		t.Fatal("the left-out member changed the hash")
	}
	if bytes.Equal(a, hash(`{"name":"erp","secret":"hunter2"}`, "secret")) {
		t.Fatal("another member's change left the hash equal")
	}
	if bytes.Equal(hash(`{"name":"crm","secret":"hunter2"}`), hash(`{"name":"crm","secret":"other"}`)) {
		t.Fatal("without the option the secret is part of the request")
	}
}
