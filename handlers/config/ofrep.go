package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"spine/shared/flags"
	"spine/shared/httpx"
	"spine/shared/tenancy"
)

// OFREP (the OpenFeature Remote Evaluation Protocol) error codes, as its OpenAPI spec names them.
const (
	ofrepParseError           = "PARSE_ERROR"
	ofrepTargetingKeyMissing  = "TARGETING_KEY_MISSING"
	ofrepInvalidContext       = "INVALID_CONTEXT"
	ofrepFlagNotFound         = "FLAG_NOT_FOUND"
	ofrepGeneral              = "GENERAL"
	ofrepMaxContextAttributes = 256
)

// The reserved evaluation context attributes: the server sets them from what it knows of the
// caller before every evaluation, replacing whatever the client sent under these names, so a
// targeting rule on them cannot be spoofed (tenant B sending {"tenantId": "<A>"} is still B).
const (
	// AttrTenantID is the evaluated tenant's id (the token's tenant; a platform admin's ?tenantId=).
	AttrTenantID = "tenantId"
	// AttrEdition is the tenant's edition code; absent when the tenant has no known edition.
	AttrEdition = "edition"
)

// reserve sets the reserved attributes of ctx for tenant and its set.
func reserve(ctx flags.Context, tenant tenancy.TenantID, set *CompiledSet) {
	ctx[AttrTenantID] = tenant.String()
	if set.Edition != "" {
		ctx[AttrEdition] = set.Edition
	} else {
		delete(ctx, AttrEdition)
	}
}

// ofrepRequest is an evaluation request: {"context": {...}}.
type ofrepRequest struct {
	Context any `json:"context"`
}

// ofrepSuccess is a successful evaluation.
type ofrepSuccess struct {
	Key      string          `json:"key"`
	Value    json.RawMessage `json:"value"`
	Reason   string          `json:"reason"`
	Variant  string          `json:"variant,omitempty"`
	Metadata ofrepMetadata   `json:"metadata"`
}

// ofrepMetadata is an evaluation's metadata: where the value came from (definition, override,
// edition, rule).
type ofrepMetadata struct {
	Source string `json:"source"`
}

// ofrepError is a failed evaluation (single: the body; bulk: one entry; Key absent for a bulk
// request's own failure).
type ofrepError struct {
	Key          string `json:"key,omitempty"`
	ErrorCode    string `json:"errorCode"`
	ErrorDetails string `json:"errorDetails,omitempty"`
}

// ofrepTarget is the tenant an evaluation is for: the token's tenant (a platform admin names one
// with ?tenantId=). Never anything in the evaluation context.
func ofrepTarget(c echo.Context) (tenancy.TenantID, error) {
	_, tenant, err := httpx.Target(c)
	return tenant, err
}

// readContext parses the request body into an evaluation context: an empty body is an empty
// context; malformed JSON is PARSE_ERROR; a context that is not an object, too many attributes or
// a non-string targetingKey is INVALID_CONTEXT.
func readContext(c echo.Context) (flags.Context, *ofrepError) {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return nil, &ofrepError{ErrorCode: ofrepParseError, ErrorDetails: "the request body could not be read"}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return flags.Context{}, nil
	}
	var req ofrepRequest // one pass: the context decodes as whatever JSON it is, then is checked
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, &ofrepError{ErrorCode: ofrepParseError, ErrorDetails: "the body is not a JSON evaluation request"}
	}
	var ctx flags.Context
	switch v := req.Context.(type) {
	case nil:
		return flags.Context{}, nil
	case map[string]any:
		ctx = v
	default:
		return nil, &ofrepError{ErrorCode: ofrepInvalidContext, ErrorDetails: "context must be a JSON object"}
	}
	if len(ctx) > ofrepMaxContextAttributes {
		return nil, &ofrepError{ErrorCode: ofrepInvalidContext, ErrorDetails: "context has too many attributes"}
	}
	if tk, ok := ctx[flags.TargetingKeyAttribute]; ok && tk != nil {
		if _, ok := tk.(string); !ok {
			return nil, &ofrepError{ErrorCode: ofrepInvalidContext, ErrorDetails: "targetingKey must be a string"}
		}
	}
	return ctx, nil
}

// evalError maps an evaluation error to its OFREP code and status.
func evalError(key string, err error) (int, ofrepError) {
	switch {
	case errors.Is(err, flags.ErrFlagNotFound):
		return http.StatusNotFound, ofrepError{Key: key, ErrorCode: ofrepFlagNotFound, ErrorDetails: "flag " + key + " not found"}
	case errors.Is(err, flags.ErrTargetingKeyMissing):
		return http.StatusBadRequest, ofrepError{Key: key, ErrorCode: ofrepTargetingKeyMissing,
			ErrorDetails: "this flag's rollout needs a targetingKey in the context"}
	case errors.Is(err, flags.ErrInvalidContext):
		return http.StatusBadRequest, ofrepError{Key: key, ErrorCode: ofrepInvalidContext, ErrorDetails: "targetingKey must be a string"}
	}
	return http.StatusInternalServerError, ofrepError{Key: key, ErrorCode: ofrepGeneral, ErrorDetails: "evaluation failed"}
}

func success(r flags.Result) ofrepSuccess {
	return ofrepSuccess{Key: r.Key, Value: r.Value, Reason: string(r.Reason), Variant: r.Variant, Metadata: ofrepMetadata{Source: r.Source}}
}

// evaluateFlag serves POST /api/ofrep/v1/evaluate/flags/:key.
func (a *API) evaluateFlag(c echo.Context) error {
	key := c.Param("key")
	tenant, err := ofrepTarget(c)
	if err != nil {
		return err
	}
	ctx, perr := readContext(c)
	if perr != nil {
		perr.Key = key
		return c.JSON(http.StatusBadRequest, perr)
	}
	set, err := a.svc.FlagSet(c.Request().Context(), tenant)
	if err != nil {
		return a.unavailable(c, tenant, err)
	}
	reserve(ctx, tenant, set)
	r, err := set.Set.Evaluate(key, ctx)
	if err != nil {
		status, body := evalError(key, err)
		return c.JSON(status, body)
	}
	return c.JSON(http.StatusOK, success(r))
}

// evaluateAll serves POST /api/ofrep/v1/evaluate/flags: every flag of the tenant's set, each a
// success or its own error. The ETag is a hash of the response; If-None-Match naming it is 304.
func (a *API) evaluateAll(c echo.Context) error {
	tenant, err := ofrepTarget(c)
	if err != nil {
		return err
	}
	ctx, perr := readContext(c)
	if perr != nil {
		return c.JSON(http.StatusBadRequest, perr)
	}
	set, err := a.svc.FlagSet(c.Request().Context(), tenant)
	if err != nil {
		return a.unavailable(c, tenant, err)
	}
	reserve(ctx, tenant, set)
	out := make([]any, 0, set.Set.Len())
	for _, key := range set.Set.Keys() {
		r, err := set.Set.Evaluate(key, ctx)
		if err != nil {
			_, e := evalError(key, err)
			out = append(out, e)
			continue
		}
		out = append(out, success(r))
	}
	body, err := json.Marshal(map[string]any{"flags": out, "metadata": map[string]any{}})
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:12]) + `"`
	c.Response().Header().Set("ETag", etag)
	if inm := c.Request().Header.Get("If-None-Match"); inm != "" && etagMatches(inm, etag) {
		return c.NoContent(http.StatusNotModified)
	}
	return c.JSONBlob(http.StatusOK, body)
}

// etagMatches reports whether an If-None-Match header names etag (weak comparison, lists, "*").
func etagMatches(header, etag string) bool {
	for _, part := range bytes.Split([]byte(header), []byte(",")) {
		p := string(bytes.TrimPrefix(bytes.TrimSpace(part), []byte("W/")))
		if p == etag || p == "*" {
			return true
		}
	}
	return false
}

// unavailable answers a set that could not be loaded (database down and no copy) as OFREP's 500
// generalErrorResponse; the cause is logged, never sent.
func (a *API) unavailable(c echo.Context, tenant tenancy.TenantID, err error) error {
	a.svc.log.Error("config: flag set unavailable", "tenant", tenant.String(), "error", err)
	return c.JSON(http.StatusInternalServerError, struct {
		ErrorDetails string `json:"errorDetails"`
	}{"flag evaluation is unavailable; retry later"})
}
