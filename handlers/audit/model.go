package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"spine/shared/tenancy"
	"spine/shared/text"
)

// Actor is who did something: a type ("user", "service", "client", "system", ...) and an id.
type Actor struct {
	Type string
	ID   string
}

// Resource is what was acted on: a type and an id.
type Resource struct {
	Type string
	ID   string
}

// NewEntry is an audit entry before it is chained: the content the caller supplies. The store
// assigns the tenant's next seq, the recording time and the hashes.
type NewEntry struct {
	// ID is the entry's id, a UUIDv7 in canonical lowercase form.
	ID string
	// OccurredAt is when the audited thing happened, UTC, truncated to microseconds.
	OccurredAt time.Time
	Actor      Actor
	Action     string
	Resource   Resource
	// TraceID is the W3C trace id (32 lowercase hex digits) or "".
	TraceID       string
	CorrelationID string
	// SourceEventID is the id of the integration event the entry records, or "" for entries
	// recorded through the API. A tenant has at most one entry per source event.
	SourceEventID string
	// Payload is JSON text, stored and hashed byte for byte.
	Payload json.RawMessage
}

// Entry is a recorded audit entry: its content, its place in the tenant's chain and its hashes.
type Entry struct {
	NewEntry
	TenantID tenancy.TenantID
	// Seq numbers the tenant's entries 1, 2, 3, ... without gaps.
	Seq int64
	// RecordedAt is the server's clock when the entry was appended, UTC, microseconds.
	RecordedAt time.Time
	// PrevHash is the Hash of the tenant's entry Seq-1 (32 zero bytes for Seq 1).
	PrevHash []byte
	// Hash is SHA-256 over the entry's canonical encoding (see chain.go).
	Hash []byte
}

// Filter selects a tenant's entries for Query. Zero members do not filter. Results are in seq
// order, starting after AfterSeq, at most Limit of them.
type Filter struct {
	From, To     time.Time // occurredAt in [From, To)
	ActorID      string
	Action       string
	ResourceType string
	ResourceID   string
	TraceID      string
	AfterSeq     int64
	Limit        int
}

// InboxClaim names the integration event an Append records, so that a redelivery of the same
// event appends nothing (see shared/inbox).
type InboxClaim struct {
	Consumer  string
	EventID   string
	EventType string
}

// Column limits, in characters, shared by validation, the consumer's clipping and both migrations.
const (
	maxActorType     = 64
	maxActorID       = 200
	maxAction        = 128
	maxResourceType  = 64
	maxResourceID    = 200
	maxCorrelationID = 128
	// MaxPayloadBytes bounds an API entry's payload (compacted JSON).
	MaxPayloadBytes = 64 << 10
	// MaxPayloadDepth bounds how deeply a payload's arrays and objects nest (API entries and
	// events alike). Far below what readers cope with: encoding/json refuses to write JSON nested
	// more than 10,000 levels, so a deeper payload, once stored, could never be listed again.
	MaxPayloadDepth = 64
	// MaxFutureSkew is how far in the future an API entry's occurredAt may lie.
	MaxFutureSkew = 5 * time.Minute
)

// earliest is the earliest occurredAt accepted: older times are typos, and the bound keeps every
// time inside both engines' ranges.
var earliest = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)

var (
	typeRE    = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9._-]{0,63}$`)
	actionRE  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9._:/-]{0,127}$`)
	traceIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

// utcMicro is t in UTC truncated to microseconds: the precision both engines store, so a time
// reads back exactly as it was hashed.
func utcMicro(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidInput, fmt.Sprintf(format, args...))
}

// validText checks a free-text member: 0 or 1..max characters (min 1 when required), valid UTF-8
// and no control characters.
func validText(field, s string, max int, required bool) error {
	n := utf8.RuneCountInString(s)
	switch {
	case required && n == 0:
		return invalid("%s is required", field)
	case n > max:
		return invalid("%s must be at most %d characters", field, max)
	case text.CheckLine(s) != nil:
		return invalid("%s must be text without control characters", field)
	}
	return nil
}

// validTraceID accepts "" or a W3C trace id: 32 lowercase hex digits, not all zero.
func validTraceID(s string) bool {
	return s == "" || (traceIDRE.MatchString(s) && s != strings.Repeat("0", 32))
}

// compactPayload validates raw as one JSON value in UTF-8, nested at most MaxPayloadDepth levels,
// and returns it compacted (insignificant white space removed; member order, numbers and escapes
// kept as sent). Absent or null is {}.
func compactPayload(raw json.RawMessage) (json.RawMessage, error) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return json.RawMessage(`{}`), nil
	}
	if !utf8.Valid(t) {
		return nil, invalid("payload must be UTF-8")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, t); err != nil {
		return nil, invalid("payload must be JSON")
	}
	if jsonDepth(buf.Bytes()) > MaxPayloadDepth {
		return nil, invalid("payload may nest arrays and objects at most %d levels deep", MaxPayloadDepth)
	}
	return buf.Bytes(), nil
}

// jsonDepth is how deeply the arrays and objects of the well-formed JSON text j nest (0 for a
// scalar).
func jsonDepth(j []byte) int {
	depth, max := 0, 0
	inString, escaped := false, false
	for _, c := range j {
		switch {
		case escaped:
			escaped = false
		case inString:
			escaped = c == '\\'
			inString = c != '"'
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			if depth++; depth > max {
				max = depth
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return max
}

// scrubPayload replaces every escaped NUL (\u0000) in compacted JSON with U+FFFD (\ufffd): jsonb
// cannot hold NUL (SQLSTATE 22P05), and an event's payload is recorded rather than refused, since
// losing an event is worse than one replaced character. So is every escape of an unpaired UTF-16
// surrogate ("\ud800" alone): the json column keeps it, but strict readers (jq, serde_json)
// refuse the whole listing page that holds it. An escaped backslash followed by "u0000" is text,
// not an escape, and stays.
func scrubPayload(j []byte) []byte {
	if !bytes.Contains(j, []byte(`\u0000`)) && !bytes.Contains(j, []byte(`\ud`)) && !bytes.Contains(j, []byte(`\uD`)) {
		return j
	}
	out := make([]byte, 0, len(j))
	for i := 0; i < len(j); i++ {
		if j[i] == '\\' && i+1 < len(j) {
			if j[i+1] == 'u' && i+6 <= len(j) {
				switch r := hexRune(j[i+2 : i+6]); {
				case r == 0, r >= 0xdc00 && r <= 0xdfff:
					out = append(out, `\ufffd`...)
					i += 5
					continue
				case r >= 0xd800 && r <= 0xdbff:
					if i+12 <= len(j) && j[i+6] == '\\' && j[i+7] == 'u' {
						if lo := hexRune(j[i+8 : i+12]); lo >= 0xdc00 && lo <= 0xdfff {
							out = append(out, j[i:i+12]...) // a pair: one character
							i += 11
							continue
						}
					}
					out = append(out, `\ufffd`...)
					i += 5
					continue
				}
			}
			out = append(out, j[i], j[i+1]) // any other escape, \\ included, is copied whole
			i++
			continue
		}
		out = append(out, j[i])
	}
	return out
}

// hexRune reads four hexadecimal digits, or -1.
func hexRune(h []byte) rune {
	v, err := strconv.ParseUint(string(h), 16, 32)
	if err != nil {
		return -1
	}
	return rune(v)
}
