package config

import (
	"net/http"
	"strings"
	"testing"

	"spine/shared/tenancy"
)

// An override that pins no variant and does not disable ({} or {"variant":""}), or whose variant
// name is too long, is 400 invalid-input naming "variant"; nothing is stored.
func TestPutOverride_400_NeitherVariantNorDisabled(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	key := newKey("ov")
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+key, h.admin(), boolFlagBody())
	tenant := tenancy.NewTenantID()
	path := "/api/feature-flags/" + key + "/overrides/" + tenant.String()
	for _, body := range []string{`{}`, `{"variant":""}`, `{"disabled":false}`, `{"variant":"","disabled":true}`, `{"variant":"` + strings.Repeat("v", MaxVariantName+1) + `"}`} {
		m := h.must(http.StatusBadRequest, "PUT", path, h.admin(), body).JSON(t)
		if m["code"] != "invalid-input" || problemField(t, m) != "variant" {
			t.Errorf("%s: %v, want invalid-input naming variant", body, m)
		}
	}
	h.must(http.StatusNotFound, "DELETE", path, h.admin(), nil)
	h.must(http.StatusCreated, "PUT", path, h.admin(), `{"disabled":true}`)
	h.must(http.StatusOK, "PUT", path, h.admin(), `{"variant":"on"}`)
}
