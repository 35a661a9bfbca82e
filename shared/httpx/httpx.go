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
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"spine/shared/problem"
)

// DecodeJSON decodes the request body into v strictly: the media type must be JSON
// (application/json, application/merge-patch+json or any +json), unknown members are rejected,
// and exactly one JSON value is accepted. The body size limit is enforced by the BodyLimit
// middleware; hitting it yields 413 body-too-large.
func DecodeJSON(c echo.Context, v any) error {
	r := c.Request()
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !(mt == "application/json" || strings.HasSuffix(mt, "+json")) {
		return problem.New(http.StatusUnsupportedMediaType, "unsupported-media-type", "Send a JSON body (Content-Type: application/json).")
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonProblem(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if tooLarge(err) {
			return bodyTooLarge()
		}
		return problem.New(http.StatusBadRequest, "invalid-json", "The body must hold exactly one JSON value.")
	}
	return nil
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
		return problem.Newf(http.StatusBadRequest, "invalid-json", "Member %q must be %s.", te.Field, te.Type.String()).
			WithFields(problem.FieldError{Field: te.Field, Detail: "must be " + te.Type.String()})
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

func tooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

func bodyTooLarge() error {
	return problem.New(http.StatusRequestEntityTooLarge, "body-too-large", "The request body is larger than this endpoint accepts.")
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

// Page is the JSON shape of every list: {"value": [...], "nextLink": "..."}.
type Page[T any] struct {
	Value    []T    `json:"value"`
	NextLink string `json:"nextLink,omitempty"`
}

// NextLink builds the URL of the next page: the request's path and query with cursor replaced.
func NextLink(c echo.Context, cursor string) string {
	q := c.Request().URL.Query()
	q.Set("cursor", cursor)
	return fmt.Sprintf("%s?%s", c.Request().URL.Path, q.Encode())
}
