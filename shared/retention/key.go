package retention

import (
	"database/sql"
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

// KeysOf reads the rows of a target's keyset query — (id, time) each, in the query's order — as
// Keys (times in UTC), and closes them: KeysOf(tx.QueryContext(...)).
func KeysOf(rows *sql.Rows, err error) ([]Key, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Key
	for rows.Next() {
		var k Key
		if err := rows.Scan(&k.ID, &k.At); err != nil {
			return nil, err
		}
		k.At = k.At.UTC()
		out = append(out, k)
	}
	return out, rows.Err()
}

// UnitsOf reads the rows of a sweep's units query — one text column each — and closes them:
// UnitsOf(tx.QueryContext(...)).
func UnitsOf(rows *sql.Rows, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}
