package billing

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"testing"

	"spine/shared/testenv/apitest"
)

func editionCodes(t *testing.T, body []byte) []string {
	t.Helper()
	var codes []string
	for _, e := range decode[struct{ Value []editionJSON }](t, body).Value {
		codes = append(codes, e.Code)
	}
	return codes
}

// An edition made for one customer is private unless its body says "public": tenants neither see
// it nor subscribe or change to it themselves (404 edition-not-found); a platform admin assigns
// it, and then its tenant sees it. The seeded editions are public.
func TestEditions_PrivateEditionIsAssignedByPlatformAdminsOnly(t *testing.T) {
	h := newHarness(t)
	admin := h.platformAdmin()
	code := freshCode()
	b := editionBody()
	delete(b, "public")
	if e := decode[editionJSON](t, h.must(http.StatusCreated, "PUT", "/api/editions/"+code, admin, b).Body); e.Public {
		t.Fatalf("created without public: %+v", e)
	}
	f, other := h.tenant(), h.tenant()
	list := editionCodes(t, h.must(http.StatusOK, "GET", "/api/editions", f.reader, nil).Body)
	if slices.Contains(list, code) || !slices.Contains(list, "free") || !slices.Contains(list, "standard") || !slices.Contains(list, "enterprise") {
		t.Errorf("a tenant's catalog: %v", list)
	}
	if !slices.Contains(editionCodes(t, h.must(http.StatusOK, "GET", "/api/editions", admin, nil).Body), code) {
		t.Error("the platform admin's catalog lacks the private edition")
	}
	h.must(http.StatusNotFound, "GET", "/api/editions/"+code, f.reader, nil)
	if r := h.do("POST", "/api/subscriptions", f.admin, map[string]any{"editionCode": code}); r.Code != http.StatusNotFound || r.ProblemCode(t) != "edition-not-found" {
		t.Errorf("tenant subscribes to the private edition: %d %s", r.Code, r.Body)
	}
	s := h.subscribe(f, "free")
	if r := h.do("POST", "/api/subscriptions/"+s.ID+"/change-edition", f.admin, map[string]any{"editionCode": code}); r.Code != http.StatusNotFound || r.ProblemCode(t) != "edition-not-found" {
		t.Errorf("tenant changes to the private edition: %d %s", r.Code, r.Body)
	}
	// The platform admin assigns it to the other tenant, who then sees it (and only that tenant).
	h.must(http.StatusCreated, "POST", "/api/subscriptions?tenantId="+other.id.String(), admin, map[string]any{"editionCode": code})
	if !slices.Contains(editionCodes(t, h.must(http.StatusOK, "GET", "/api/editions", other.reader, nil).Body), code) {
		t.Error("the assigned tenant's catalog lacks its edition")
	}
	h.must(http.StatusOK, "GET", "/api/editions/"+code, other.reader, nil)
	h.must(http.StatusNotFound, "GET", "/api/editions/"+code, f.reader, nil)
	h.must(http.StatusOK, "POST", "/api/subscriptions/"+s.ID+"/change-edition?tenantId="+f.id.String(), admin, map[string]any{"editionCode": code})
	// A replace without "public" keeps the stored value; "public": true offers it to everyone.
	b["public"] = true
	h.must(http.StatusOK, "PUT", "/api/editions/"+code, admin, b)
	delete(b, "public")
	if e := decode[editionJSON](t, h.must(http.StatusOK, "PUT", "/api/editions/"+code, admin, b).Body); !e.Public {
		t.Errorf("a replace without public made it private: %+v", e)
	}
	for _, seeded := range []string{"free", "standard", "enterprise"} {
		if e := decode[editionJSON](t, h.must(http.StatusOK, "GET", "/api/editions/"+seeded, f.reader, nil).Body); !e.Public {
			t.Errorf("seeded %s is not public", seeded)
		}
	}
}

// Every edition limits a tenant as a whole: an edition without a tenant-wide limit (route "") is
// 400 invalid-limit.
func TestPutEdition_400_WithoutATenantWideLimit(t *testing.T) {
	h := newHarness(t)
	for name, limits := range map[string][]any{
		"no limits":        {},
		"route limit only": {map[string]any{"route": "/api/audit-entries", "rate": 1, "burst": 1, "periodSeconds": 1, "shadow": false}},
	} {
		b := editionBody()
		b["entitlements"].(map[string]any)["limits"] = limits
		r := h.do("PUT", "/api/editions/"+freshCode(), h.platformAdmin(), b)
		if r.Code != http.StatusBadRequest || r.ProblemCode(t) != "invalid-limit" {
			t.Errorf("%s: %d %s", name, r.Code, r.Body)
		}
	}
}

// A tenant learns nothing of a private edition it does not see: subscribe and change-edition to
// it answer exactly what an unknown code answers (404 edition-not-found, the same body but the
// instance). Its own pending private edition stays visible: there the answer is 403
// edition-not-public.
func TestEditions_404_PrivateEditionOfAnotherAnswersLikeAnUnknownCode(t *testing.T) {
	h := newHarness(t)
	admin := h.platformAdmin()
	private := freshCode()
	b := editionBody()
	delete(b, "public")
	b["rank"] = -5 // below standard's 10: a change to it is a pending downgrade
	h.must(http.StatusCreated, "PUT", "/api/editions/"+private, admin, b)
	unknown := freshCode()
	sameAsUnknown := func(what string, got, want apitest.Response) {
		t.Helper()
		var g, w map[string]any
		if err := json.Unmarshal(got.Body, &g); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(want.Body, &w); err != nil {
			t.Fatal(err)
		}
		delete(g, "instance")
		delete(w, "instance")
		if got.Code != http.StatusNotFound || want.Code != http.StatusNotFound || !reflect.DeepEqual(g, w) {
			t.Errorf("%s: private %d %s, unknown %d %s", what, got.Code, got.Body, want.Code, want.Body)
		}
	}
	f, g := h.tenant(), h.tenant()
	sameAsUnknown("subscribe",
		h.do("POST", "/api/subscriptions", f.admin, map[string]any{"editionCode": private}),
		h.do("POST", "/api/subscriptions", f.admin, map[string]any{"editionCode": unknown}))
	s := h.subscribe(f, "standard")
	change := "/api/subscriptions/" + s.ID + "/change-edition"
	sameAsUnknown("change-edition",
		h.do("POST", change, f.admin, map[string]any{"editionCode": private}),
		h.do("POST", change, f.admin, map[string]any{"editionCode": unknown}))
	// g's pending edition is its own: g sees it, and changing to it again is 403, not 404.
	sg := h.subscribe(g, "standard")
	gchange := "/api/subscriptions/" + sg.ID + "/change-edition"
	if p := decode[subscriptionJSON](t, h.must(http.StatusOK, "POST", gchange+"?tenantId="+g.id.String(), admin, map[string]any{"editionCode": private}).Body); p.PendingEdition != private {
		t.Fatalf("not pending: %+v", p)
	}
	h.must(http.StatusOK, "GET", "/api/editions/"+private, g.reader, nil)
	if r := h.do("POST", gchange, g.admin, map[string]any{"editionCode": private}); r.Code != http.StatusForbidden || r.ProblemCode(t) != "edition-not-public" {
		t.Errorf("own pending: %d %s", r.Code, r.Body)
	}
	// f still learns nothing while g is on it.
	sameAsUnknown("change-edition while another tenant has it",
		h.do("POST", change, f.admin, map[string]any{"editionCode": private}),
		h.do("POST", change, f.admin, map[string]any{"editionCode": unknown}))
}
