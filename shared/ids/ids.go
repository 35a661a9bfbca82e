// Package ids is the one spelling of the platform's entity ids: canonical lowercase UUID text,
// time-ordered (UUIDv7) when Spine makes them.
package ids

import "github.com/google/uuid"

// Parse accepts only the canonical 36-character lowercase form of a non-nil UUID, so one id has
// one spelling in keys, paths and logs.
func Parse(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	u, err := uuid.Parse(s)
	if err != nil || u == uuid.Nil || u.String() != s {
		return "", false
	}
	return s, true
}

// New returns a fresh time-ordered (UUIDv7) id in canonical form.
func New() string { return uuid.Must(uuid.NewV7()).String() }
