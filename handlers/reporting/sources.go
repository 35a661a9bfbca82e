package reporting

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"time"
)

// A source is a built-in, named, parameterised query over the reporting service's own read models
// (fed by events; never another service's tables). Its parameters are typed and bounded; its rows
// stream from a SQL cursor (open), one typed value per column.
type Source struct {
	// Key is the source's name in a report definition.
	Key string
	// Description says what a row is.
	Description string
	Params      []Param
	Columns     []Column
	// open runs the query in tx (the tenant's scope) with validated parameters.
	open func(ctx context.Context, tx *Tx, p map[string]string) (*sql.Rows, error)
}

// ParamType is a parameter's type.
type ParamType string

// The parameter types: a calendar date (YYYY-MM-DD), one of a fixed set, or a bounded token.
const (
	ParamDate  ParamType = "date"
	ParamEnum  ParamType = "enum"
	ParamToken ParamType = "token"
)

// Param is one parameter of a source.
type Param struct {
	Name     string
	Type     ParamType
	Required bool
	Enum     []string // ParamEnum's values
}

// ColumnKind is how a column's values are typed in the artifact.
type ColumnKind int

// The column kinds: text, a count, an instant (RFC 3339, UTC), a date (YYYY-MM-DD).
const (
	KindText ColumnKind = iota
	KindInt
	KindTime
	KindDate
)

// Column is one column of a source's rows.
type Column struct {
	Name string
	Kind ColumnKind
}

// maxDateRange bounds a from/to range (a year and a day, so a leap year fits).
const maxDateRange = 366

// tokenRE is a token parameter's shape (an event type name).
var tokenRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9._-]{0,127}$`)

// sources is the registry of built-in sources, by key.
var sources = map[string]*Source{
	"users-and-roles": {
		Key:         "users-and-roles",
		Description: "One row per user and role the user holds (a user without roles: one row, roleCode empty), by email.",
		Params:      []Param{{Name: "status", Type: ParamEnum, Enum: []string{"Invited", "Active", "Disabled"}}},
		Columns: []Column{{"userId", KindText}, {"email", KindText}, {"status", KindText}, {"roleCode", KindText},
			{"invitedAt", KindTime}, {"activatedAt", KindTime}},
		open: func(ctx context.Context, tx *Tx, p map[string]string) (*sql.Rows, error) {
			return tx.UsersAndRoles(ctx, p["status"])
		},
	},
	"activity-by-day": {
		Key:         "activity-by-day",
		Description: "Per UTC day from..to (inclusive, at most 366 days) and event type, how many events the tenant's services published.",
		Params:      []Param{{Name: "from", Type: ParamDate, Required: true}, {Name: "to", Type: ParamDate, Required: true}, {Name: "eventType", Type: ParamToken}},
		Columns:     []Column{{"day", KindDate}, {"eventType", KindText}, {"count", KindInt}},
		open: func(ctx context.Context, tx *Tx, p map[string]string) (*sql.Rows, error) {
			from, _ := time.Parse(time.DateOnly, p["from"])
			to, _ := time.Parse(time.DateOnly, p["to"])
			return tx.ActivityByDay(ctx, from, to, p["eventType"])
		},
	},
}

// SourceKeys are the built-in sources' keys, sorted.
func SourceKeys() []string {
	keys := make([]string, 0, len(sources))
	for k := range sources {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// lookupSource returns the source with key, or ErrUnknownSource.
func lookupSource(key string) (*Source, error) {
	s, ok := sources[key]
	if !ok {
		return nil, ErrUnknownSource
	}
	return s, nil
}

// parseParameters checks a request's parameters member (a JSON object) against src: every
// member a parameter of the source, a string of its type. Required parameters may be missing
// (a definition's parameters are defaults; a run's merged parameters must be complete).
func parseParameters(src *Source, raw map[string]any) (map[string]string, error) {
	out := make(map[string]string, len(raw))
	for name, v := range raw {
		i := slices.IndexFunc(src.Params, func(p Param) bool { return p.Name == name })
		field := "parameters." + name
		if i < 0 {
			return nil, invalid(ErrInvalidParameters, field, fmt.Sprintf("is not a parameter of source %s", src.Key))
		}
		s, ok := v.(string)
		if !ok {
			return nil, invalid(ErrInvalidParameters, field, "must be a string")
		}
		p := src.Params[i]
		switch p.Type {
		case ParamDate:
			d, err := time.Parse(time.DateOnly, s)
			if err != nil || d.Year() < 2000 || d.Year() > 9999 {
				return nil, invalid(ErrInvalidParameters, field, "must be a date YYYY-MM-DD from the year 2000 on")
			}
		case ParamEnum:
			if !slices.Contains(p.Enum, s) {
				return nil, invalid(ErrInvalidParameters, field, fmt.Sprintf("must be one of %v", p.Enum))
			}
		case ParamToken:
			if !tokenRE.MatchString(s) {
				return nil, invalid(ErrInvalidParameters, field, "must be 1 to 128 letters, digits, '.', '_' or '-', starting with a letter")
			}
		}
		out[name] = s
	}
	return out, nil
}

// completeParameters checks a run's merged parameters: every required one present and the
// cross-parameter bounds (from ≤ to, at most maxDateRange days).
func completeParameters(src *Source, p map[string]string) error {
	for _, prm := range src.Params {
		if prm.Required && p[prm.Name] == "" {
			return invalid(ErrInvalidParameters, "parameters."+prm.Name, "is required (in the report or the run)")
		}
	}
	if f, t := p["from"], p["to"]; f != "" && t != "" {
		from, _ := time.Parse(time.DateOnly, f)
		to, _ := time.Parse(time.DateOnly, t)
		if to.Before(from) {
			return invalid(ErrInvalidParameters, "parameters.to", "must not be before from")
		}
		if to.Sub(from) > (maxDateRange-1)*24*time.Hour {
			return invalid(ErrInvalidParameters, "parameters.to", fmt.Sprintf("must be at most %d days after from", maxDateRange-1))
		}
	}
	return nil
}

// mergeParameters is base overridden by over.
func mergeParameters(base, over map[string]string) map[string]string {
	out := make(map[string]string, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}

// scanRow reads the current row of rows into vals, one typed value per column: string, int64,
// time.Time or nil (SQL NULL).
func scanRow(rows *sql.Rows, cols []Column, vals []any) error {
	ptrs := make([]any, len(cols))
	texts := make([]sql.NullString, len(cols))
	ints := make([]sql.NullInt64, len(cols))
	times := make([]sql.NullTime, len(cols))
	for i, c := range cols {
		switch c.Kind {
		case KindInt:
			ptrs[i] = &ints[i]
		case KindTime, KindDate:
			ptrs[i] = &times[i]
		default:
			ptrs[i] = &texts[i]
		}
	}
	if err := rows.Scan(ptrs...); err != nil {
		return err
	}
	for i, c := range cols {
		vals[i] = nil
		switch c.Kind {
		case KindInt:
			if ints[i].Valid {
				vals[i] = ints[i].Int64
			}
		case KindTime, KindDate:
			if times[i].Valid {
				vals[i] = times[i].Time.UTC()
			}
		default:
			if texts[i].Valid {
				vals[i] = texts[i].String
			}
		}
	}
	return nil
}
