package config

import (
	"net/http"
	"testing"

	"spine/shared/tenancy"
)

// A flag definition or setting body holding one member twice is 400 duplicate-member naming it
// (encoding/json would keep the last).
func TestPut_400_DuplicateMember(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	for _, tc := range []struct{ path, body, field string }{
		{"/api/settings/" + newKey("dup"), `{"type":"string","type":"number","value":1}`, "type"},
		{"/api/feature-flags/" + newKey("dup"), `{"type":"boolean","variants":{"on":true,"on":false},"defaultVariant":"on"}`, "variants.on"},
		{"/api/feature-flags/" + newKey("dup"), `{"type":"boolean","variants":{"on":true},"defaultVariant":"on","rules":[{"variant":"on","when":[{"attribute":"a","op":"in","op":"equals","values":[1]}]}]}`, "rules[0].when[0].op"},
	} {
		m := h.must(http.StatusBadRequest, "PUT", tc.path, h.admin(), tc.body).JSON(t)
		if m["code"] != "duplicate-member" || problemField(t, m) != tc.field {
			t.Errorf("%s: %v, want duplicate-member %q", tc.body, m, tc.field)
		}
	}
}

// OFREP: a duplicate in the context is INVALID_CONTEXT naming it, one elsewhere in the body
// PARSE_ERROR; both 400.
func TestOFREP_400_DuplicateMember(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	b, _, _, _ := allTypesFlags(t, h)
	tok := h.tenantToken(tenancy.NewTenantID())
	for _, tc := range []struct{ body, code, details string }{
		{`{"context":{},"context":{"x":1}}`, "INVALID_CONTEXT", "context appears more than once"},
		{`{"context":{"targetingKey":"u","plan":"a","plan":"b"}}`, "INVALID_CONTEXT", "context.plan appears more than once"},
		{`{"context":{"targetingKey":"u"},"other":{"a":1,"a":2}}`, "PARSE_ERROR", `the body holds member "other.a" more than once`},
	} {
		for _, path := range []string{"/api/ofrep/v1/evaluate/flags/" + b, "/api/ofrep/v1/evaluate/flags"} {
			m := h.must(http.StatusBadRequest, "POST", path, tok, tc.body).JSON(t)
			if m["errorCode"] != tc.code || m["errorDetails"] != tc.details {
				t.Errorf("%s %s: %v, want %s %q", path, tc.body, m, tc.code, tc.details)
			}
		}
	}
}
