package retention

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Key is a position in the keyset order (time, id) most targets page in: a range's From and To and
// a unit's watermark, kept in the ledger as Key.String. The zero Key is before every row.
type Key struct {
	At time.Time
	ID string
}

// ErrInvalidKey is a range bound or position that Key.String did not write.
var ErrInvalidKey = errors.New("retention: invalid range key")

// String is the ledger form: "<time, RFC 3339 UTC with its fraction>/<id>"; "" for the zero Key.
func (k Key) String() string {
	if k.At.IsZero() && k.ID == "" {
		return ""
	}
	return k.At.UTC().Format(time.RFC3339Nano) + "/" + k.ID
}

// ParseKey reads what Key.String wrote ("" is the zero Key).
func ParseKey(s string) (Key, error) {
	if s == "" {
		return Key{}, nil
	}
	at, id, ok := strings.Cut(s, "/")
	t, err := time.Parse(time.RFC3339Nano, at)
	if !ok || err != nil || id == "" || strings.Contains(id, "/") {
		return Key{}, fmt.Errorf("%w: %q", ErrInvalidKey, s)
	}
	return Key{At: t.UTC(), ID: id}, nil
}
