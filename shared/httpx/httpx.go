// Package httpx holds the HTTP edge helpers every service's routes share: strict JSON decoding,
// ETag/If-Match, opaque cursors, and W3C trace context. Errors it returns are problems with stable
// codes, so handlers can return them unchanged.
package httpx

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"spine/shared/problem"
	"spine/shared/text"
)

// DecodeJSON decodes the request body into v strictly: the media type must be JSON
// (application/json, application/merge-patch+json or any +json), unknown members are rejected
// (400 unknown-field) and member names must match exactly — encoding/json alone would read
// {"Name": …} into "name"; here it is unknown-field —, exactly one JSON value is accepted, arrays
// and objects in a member nest at most MaxBodyDepth levels (400 invalid-input naming the member),
// and every string in it must pass text.Check (400 invalid-input naming the member otherwise: NUL
// and other control characters never reach a store), read as sent: bytes that are not UTF-8 and
// unpaired surrogate escapes are refused too, not replaced with U+FFFD. Map keys, interface values
// and types with their own UnmarshalJSON or UnmarshalText are data, not member names. The body
// size limit is enforced by the BodyLimit middleware; hitting it yields 413 body-too-large.
func DecodeJSON(c echo.Context, v any) error {
	r := c.Request()
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !(mt == "application/json" || strings.HasSuffix(mt, "+json")) {
		return problem.New(http.StatusUnsupportedMediaType, "unsupported-media-type", "Send a JSON body (Content-Type: application/json).")
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		if tooLarge(err) {
			return bodyTooLarge()
		}
		return problem.New(http.StatusBadRequest, "invalid-json", "The request body could not be read.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonProblem(typeErrorAt(body, v, err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return problem.New(http.StatusBadRequest, "invalid-json", "The body must hold exactly one JSON value.")
	}
	if err := checkBody(body, v); err != nil {
		return err
	}
	if field, err := text.Walk(v); err != nil {
		return InvalidText(field, err)
	}
	// The decoder turned bytes that are not UTF-8 and unpaired surrogate escapes into U+FFFD, which
	// Walk cannot tell from the character itself: read the body as sent when it may hold either.
	if !utf8.Valid(body) || bytes.Contains(body, []byte(`\ud`)) || bytes.Contains(body, []byte(`\uD`)) {
		if field, err := text.CheckJSON(body, ""); err != nil {
			return InvalidText(field, err)
		}
	}
	return nil
}

// InvalidText is the 400 invalid-input problem for a member, parameter or header whose text
// text.Check or text.CheckLine refused.
func InvalidText(field string, err error) *problem.Problem {
	d := text.Describe(err)
	return problem.Newf(http.StatusBadRequest, "invalid-input", "%s %s.", field, d).
		WithFields(problem.FieldError{Field: field, Detail: d})
}

// QueryText is middleware that refuses, with 400 invalid-input naming the parameter, a request
// whose query parameters hold control characters or invalid UTF-8: no service has a parameter
// that may, and a store must never see one.
func QueryText() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if c.Request().URL.RawQuery != "" {
				for name, vs := range c.QueryParams() {
					if err := text.CheckLine(name); err != nil {
						return InvalidText("query parameter", err)
					}
					for _, v := range vs {
						if err := text.CheckLine(v); err != nil {
							return InvalidText(name, err)
						}
					}
				}
			}
			return next(c)
		}
	}
}

func jsonProblem(err error) error {
	if tooLarge(err) {
		return bodyTooLarge()
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return problem.New(http.StatusBadRequest, "invalid-json", "The request body is empty.")
	case errors.As(err, &se):
		return problem.Newf(http.StatusBadRequest, "invalid-json", "Malformed JSON at byte %d.", se.Offset)
	case errors.As(err, &te):
		if te.Field == "" {
			return problem.Newf(http.StatusBadRequest, "invalid-json", "The body must be %s.", jsonKind(te.Type))
		}
		return problem.Newf(http.StatusBadRequest, "invalid-json", "Member %q must be %s.", te.Field, jsonKind(te.Type)).
			WithFields(problem.FieldError{Field: te.Field, Detail: "must be " + jsonKind(te.Type)})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return problem.Newf(http.StatusBadRequest, "unknown-field", "Member %q is not part of this resource.", field).
			WithFields(problem.FieldError{Field: field, Detail: "unknown member"})
	case errors.Is(err, io.ErrUnexpectedEOF):
		return problem.New(http.StatusBadRequest, "invalid-json", "The JSON body ends too early.")
	}
	var ve interface{ ValidationProblem() *problem.Problem }
	if errors.As(err, &ve) {
		return ve.ValidationProblem()
	}
	return problem.New(http.StatusBadRequest, "invalid-json", "The body is not valid JSON for this resource.")
}

// jsonKind names the JSON kind of value a Go type decodes from ("a string", "an object"), so a
// type error tells the caller what to send without showing the server's Go types.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Implements(reflect.TypeFor[json.Unmarshaler]()) || reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]()) {
		return "a JSON value of another kind"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "a whole number in range"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "a JSON value of another kind"
}

func tooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

func bodyTooLarge() error {
	return problem.New(http.StatusRequestEntityTooLarge, "body-too-large", "The request body is larger than this endpoint accepts.")
}

// Edge is the middleware every /api request passes before authentication, in order: trace
// context, the query text check and the body size limit. app.go and every API test harness build
// their /api group from it, so tests exercise the edge the binary has.
func Edge(maxBodyBytes int64) []echo.MiddlewareFunc {
	return []echo.MiddlewareFunc{Trace(), QueryText(), BodyLimit(maxBodyBytes)}
}

// BodyLimit caps request bodies at n bytes: a larger Content-Length is refused at once (413), and
// a body that turns out larger while reading fails its decode with 413.
func BodyLimit(n int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if r.ContentLength > n {
				return bodyTooLarge()
			}
			if r.Body != nil && r.Body != http.NoBody {
				r.Body = http.MaxBytesReader(c.Response(), r.Body, n)
			}
			return next(c)
		}
	}
}

// ETag formats a resource version as a strong entity tag.
func ETag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// SetETag sets the ETag header for a resource at version.
func SetETag(c echo.Context, version int64) { c.Response().Header().Set("ETag", ETag(version)) }

// IfMatch returns the version named by the request's If-Match header, or ok=false when the header
// is absent or "*". A malformed header is a 400 problem.
func IfMatch(c echo.Context) (version int64, ok bool, err error) {
	h := strings.TrimSpace(c.Request().Header.Get("If-Match"))
	if h == "" || h == "*" {
		return 0, false, nil
	}
	h = strings.TrimPrefix(h, "W/")
	if len(h) < 3 || h[0] != '"' || h[len(h)-1] != '"' {
		return 0, false, problem.New(http.StatusBadRequest, "invalid-if-match", `If-Match must be an entity tag such as "3".`)
	}
	v, perr := strconv.ParseInt(h[1:len(h)-1], 10, 64)
	if perr != nil {
		// A well-formed tag we never issued can never match.
		return -1, true, nil
	}
	return v, true, nil
}

// IfMatchVersion is IfMatch for routes that take an optional version: nil when the header is
// absent or "*".
func IfMatchVersion(c echo.Context) (*int64, error) {
	v, ok, err := IfMatch(c)
	if err != nil || !ok {
		return nil, err
	}
	p := new(int64) // only here: a GET without If-Match allocates nothing
	*p = v
	return p, nil
}

// PreconditionFailed is the problem for an If-Match that names another version.
func PreconditionFailed() *problem.Problem {
	return problem.New(http.StatusPreconditionFailed, "precondition-failed",
		"The resource has changed since the entity tag in If-Match was issued; fetch it again.")
}

// EncodeCursor makes an opaque cursor from a key; DecodeCursor reverses it.
func EncodeCursor(key string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("k1:" + key))
}

// DecodeCursor returns the key inside a cursor made by EncodeCursor, or a 400 problem.
func DecodeCursor(s string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || !bytes.HasPrefix(b, []byte("k1:")) {
		return "", problem.New(http.StatusBadRequest, "invalid-cursor", "The cursor is not one this API issued.")
	}
	return string(b[3:]), nil
}

// MinTime and MaxTime bound every time the API accepts, in UTC: JSON, RFC 3339 and both engines
// hold years 0001–9999 only, and an offset can carry a local 9999-12-31 into UTC's year 10000.
var (
	MinTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	MaxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
)

// ErrTimeOutOfRange is ParseTime's error for a well-formed time outside MinTime..MaxTime in UTC.
var ErrTimeOutOfRange = errors.New("outside years 0001–9999 in UTC")

// ParseTime parses an RFC 3339 time from outside and returns it in UTC. A time outside
// MinTime..MaxTime once in UTC is ErrTimeOutOfRange; a malformed one is time.Parse's error.
func ParseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	t = t.UTC()
	if t.Before(MinTime) || t.After(MaxTime) {
		return time.Time{}, ErrTimeOutOfRange
	}
	return t, nil
}

// TimeParam parses the optional RFC 3339 query parameter name with ParseTime (zero when absent),
// or answers a 400 invalid-time problem naming it. A '+' offset sent unencoded arrives as a
// space, which is read as the '+' it was.
func TimeParam(c echo.Context, name string) (time.Time, error) {
	s := c.QueryParam(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := ParseTime(s)
	if err != nil && !errors.Is(err, ErrTimeOutOfRange) && strings.Contains(s, " ") {
		t, err = ParseTime(strings.ReplaceAll(s, " ", "+"))
	}
	switch {
	case errors.Is(err, ErrTimeOutOfRange):
		return time.Time{}, problem.Newf(http.StatusBadRequest, "invalid-time", "%s must lie between years 0001 and 9999 in UTC.", name).
			WithFields(problem.FieldError{Field: name, Detail: err.Error()})
	case err != nil:
		return time.Time{}, problem.Newf(http.StatusBadRequest, "invalid-time", "%s must be an RFC 3339 time, e.g. 2026-01-31T23:00:00Z.", name).
			WithFields(problem.FieldError{Field: name, Detail: "not an RFC 3339 time"})
	}
	return t, nil
}

// Limit parses the `limit` query parameter: default def, 1..max.
func Limit(c echo.Context, def, max int) (int, error) {
	v := c.QueryParam("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, problem.Newf(http.StatusBadRequest, "invalid-limit", "limit must be a whole number from 1 to %d.", max)
	}
	return n, nil
}

// Page is the JSON shape of every list: {"value": [...], "nextLink": "..."}. An empty list is
// rendered as [], never null, whether Value is nil or empty.
type Page[T any] struct {
	Value    []T    `json:"value"`
	NextLink string `json:"nextLink,omitempty"`
}

// MarshalJSON implements json.Marshaler: a nil Value is [].
func (p Page[T]) MarshalJSON() ([]byte, error) {
	v := p.Value
	if v == nil {
		v = []T{}
	}
	return json.Marshal(struct {
		Value    []T    `json:"value"`
		NextLink string `json:"nextLink,omitempty"`
	}{v, p.NextLink})
}

// NextLink builds the URL of the next page: the request's path and query with cursor replaced.
func NextLink(c echo.Context, cursor string) string {
	q := c.Request().URL.Query()
	q.Set("cursor", cursor)
	return fmt.Sprintf("%s?%s", c.Request().URL.Path, q.Encode())
}

// PatchString reads one string member of a JSON merge patch (RFC 7396), decoded into a
// json.RawMessage field (whose text DecodeJSON has checked): absent is (nil, false), null is
// (nil, true) — the member is to be removed — and a string is (&value, false). Any other JSON
// value is 400 invalid-json naming the member. A member that cannot be removed reads with
// RequiredPatchString.
func PatchString(field string, raw json.RawMessage) (value *string, null bool, err error) {
	switch t := strings.TrimSpace(string(raw)); t {
	case "":
		return nil, false, nil
	case "null":
		return nil, true, nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, false, problem.Newf(http.StatusBadRequest, "invalid-json", "Member %q must be a string.", field).
			WithFields(problem.FieldError{Field: field, Detail: "must be a string"})
	}
	return &v, false, nil
}

// RequiredPatchString is PatchString for a member every resource has: null, which would remove
// it, is 400 invalid-input naming the member (a merge patch that cannot be applied is refused,
// never applied as if the member were absent).
func RequiredPatchString(field string, raw json.RawMessage) (*string, error) {
	v, null, err := PatchString(field, raw)
	if null {
		return nil, problem.Newf(http.StatusBadRequest, "invalid-input", "%s cannot be removed: it is required.", field).
			WithFields(problem.FieldError{Field: field, Detail: "required; null would remove it"})
	}
	return v, err
}

// NoneMatch reports whether r's If-None-Match (every header line, each a list) matches etag, by
// RFC 9110 §13.1.2: weak comparison (W/"x" matches "x"), and * matches any current
// representation. A GET that matches answers 304.
func NoneMatch(r *http.Request, etag string) bool {
	etag = strings.TrimPrefix(etag, "W/")
	for _, line := range r.Header.Values("If-None-Match") {
		for _, tag := range strings.Split(line, ",") {
			tag = strings.TrimSpace(tag)
			if tag == "*" || strings.TrimPrefix(tag, "W/") == etag {
				return true
			}
		}
	}
	return false
}
