package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"spine/shared/flags"
	"spine/shared/httpx"
	"spine/shared/tenancy"
	"spine/shared/text"
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

// readContext parses the request body, {"context": {...}}, into an evaluation context: an empty
// body is an empty context; malformed JSON is PARSE_ERROR. The member is "context" exactly (OFREP
// lets a server ignore unknown members, so {"Context": …} is ignored, never read as the context).
// A context that is not an object, has too many attributes, a non-string targetingKey, or breaks
// the shared input rules (control characters other than tab and line breaks, text that is not
// UTF-8 as sent, more than MaxValueDepth levels) is INVALID_CONTEXT.
func readContext(c echo.Context) (flags.Context, *ofrepError) {
	body, err := readBody(c.Request())
	if err != nil {
		return nil, &ofrepError{ErrorCode: ofrepParseError, ErrorDetails: "the request body could not be read"}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return flags.Context{}, nil
	}
	var req map[string]any // one pass: the context decodes as whatever JSON it is, then is checked
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, &ofrepError{ErrorCode: ofrepParseError, ErrorDetails: "the body is not a JSON evaluation request"}
	}
	// encoding/json keeps the last of two members with one name: which context was meant cannot be
	// told, so a duplicate in the context is INVALID_CONTEXT, one elsewhere PARSE_ERROR.
	if path, dup := httpx.DuplicateMember(body); dup {
		if path == "context" || strings.HasPrefix(path, "context.") || strings.HasPrefix(path, "context[") {
			return nil, &ofrepError{ErrorCode: ofrepInvalidContext, ErrorDetails: path + " appears more than once"}
		}
		return nil, &ofrepError{ErrorCode: ofrepParseError, ErrorDetails: "the body holds member " + strconv.Quote(path) + " more than once"}
	}
	var ctx flags.Context
	switch v := req["context"].(type) {
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
	if suffix, detail := checkContext(map[string]any(ctx), 1); detail != "" {
		return nil, &ofrepError{ErrorCode: ofrepInvalidContext, ErrorDetails: "context" + suffix + " " + detail}
	}
	// The decoder turned bytes that are not UTF-8 and unpaired surrogate escapes into U+FFFD, which
	// the check above cannot tell from the character itself: read the body as sent when it may hold
	// either (as httpx.DecodeJSON does). Members other than the context are ignored, wherever.
	if !utf8.Valid(body) || bytes.Contains(body, []byte(`\ud`)) || bytes.Contains(body, []byte(`\uD`)) {
		if path, err := text.CheckJSON(body, ""); err != nil && (path == "context" || strings.HasPrefix(path, "context.")) {
			return nil, &ofrepError{ErrorCode: ofrepInvalidContext, ErrorDetails: path + " " + text.Describe(err)}
		}
	}
	return ctx, nil
}

// readBody reads a request body; one allocation of its declared length when it has one (the
// SDKs send Content-Length; io.ReadAll would start at 512 bytes and grow).
func readBody(r *http.Request) ([]byte, error) {
	if n := r.ContentLength; n > 0 && n <= ofrepMaxDeclaredBody {
		body := make([]byte, n)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return nil, err
		}
		return body, nil
	}
	return io.ReadAll(r.Body)
}

// ofrepMaxDeclaredBody is the largest declared Content-Length read into one allocation up front
// (the edge's body limit still applies to every body; a larger one is read as it comes).
const ofrepMaxDeclaredBody = 64 << 10

// checkContext applies the shared text rules to every string of an evaluation context value v
// (member names too) and bounds its nesting at MaxValueDepth levels (depth is v's own level). It
// returns why the first refused value is refused ("" when all pass) and its path below v
// (".plan", "[2]"); it allocates only on a refusal.
func checkContext(v any, depth int) (suffix, detail string) {
	switch x := v.(type) {
	case string:
		if err := text.Check(x); err != nil {
			return "", text.Describe(err)
		}
	case map[string]any:
		if depth > MaxValueDepth {
			return "", fmt.Sprintf("nests arrays and objects deeper than %d levels", MaxValueDepth)
		}
		for k, e := range x {
			if err := text.Check(k); err != nil {
				return "", "member names " + text.Describe(err)
			}
			if p, d := checkContext(e, depth+1); d != "" {
				return "." + k + p, d
			}
		}
	case []any:
		if depth > MaxValueDepth {
			return "", fmt.Sprintf("nests arrays and objects deeper than %d levels", MaxValueDepth)
		}
		for i, e := range x {
			if p, d := checkContext(e, depth+1); d != "" {
				return "[" + strconv.Itoa(i) + "]" + p, d
			}
		}
	}
	return "", ""
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
	if httpx.NoneMatch(c.Request(), etag) {
		return c.NoContent(http.StatusNotModified)
	}
	return c.JSONBlob(http.StatusOK, body)
}

// unavailable answers a set that could not be loaded (database down and no copy) as OFREP's 500
// generalErrorResponse; the cause is logged, never sent.
func (a *API) unavailable(c echo.Context, tenant tenancy.TenantID, err error) error {
	a.svc.log.Error("config: flag set unavailable", "tenant", tenant.String(), "error", err)
	return c.JSON(http.StatusInternalServerError, struct {
		ErrorDetails string `json:"errorDetails"`
	}{"flag evaluation is unavailable; retry later"})
}
