package retention

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"spine/shared/tenancy"
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

// NextByKey is the body of Next for a target that pages a tenant's rows in Key order: it parses
// the unit (a tenant id) and the position, reads the due keys after it with read (at most the
// limit the target passes on), and when nothing is due past the position looks once from the
// start — a row that fell behind the watermark (written by an instance whose clock ran behind) is
// still swept. The range spans the keys read.
func NextByKey(unit, after string, read func(tenant tenancy.TenantID, from Key) ([]Key, error)) (Range, bool, error) {
	tenant, err := tenancy.ParseTenantID(unit)
	if err != nil {
		return Range{}, false, err
	}
	from, err := ParseKey(after)
	if err != nil {
		return Range{}, false, err
	}
	keys, err := read(tenant, from)
	if err == nil && len(keys) == 0 && after != "" {
		keys, err = read(tenant, Key{})
	}
	if err != nil || len(keys) == 0 {
		return Range{}, false, err
	}
	first, last := keys[0], keys[len(keys)-1]
	return Range{From: first.String(), To: last.String(), Count: len(keys), FirstAt: first.At, LastAt: last.At}, true, nil
}

// ParseRange parses a tenant unit and the Key bounds of its range (what NextByKey wrote), for a
// target's Apply.
func ParseRange(unit string, r Range) (tenant tenancy.TenantID, from, to Key, err error) {
	if tenant, err = tenancy.ParseTenantID(unit); err != nil {
		return tenant, from, to, err
	}
	if from, err = ParseKey(r.From); err != nil {
		return tenant, from, to, err
	}
	to, err = ParseKey(r.To)
	return tenant, from, to, err
}
