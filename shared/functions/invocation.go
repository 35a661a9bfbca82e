package functions

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"spine/shared/problem"
)

// Invocation request headers the host sends.
const (
	HeaderInvocationID = "X-Azure-Functions-InvocationId"
	HeaderHostVersion  = "X-Azure-Functions-HostVersion"
)

// Stable problem codes of invocation decoding errors.
const (
	CodeInvocationMalformed = "invocation-malformed"         // 400: the body is not {"Data":{…},"Metadata":{…}}
	CodeInvocationTooLarge  = "invocation-too-large"         // 413: the body exceeds the limit
	CodeBindingMissing      = "invocation-binding-missing"   // 400: Data has no such binding / Metadata no such key
	CodeBindingMalformed    = "invocation-binding-malformed" // 400: a binding's or metadata value cannot be decoded
)

// DefaultMaxBodyBytes is the invocation body limit Mount applies when a Function sets none. It fits a
// 256 KiB Service Bus message quoted twice (each byte at most four after escaping) plus metadata.
const DefaultMaxBodyBytes int64 = 2 << 20

// maxUnwrapDepth bounds how many JSON-string quoting layers Payload removes.
const maxUnwrapDepth = 8

// Sentinel causes of Payload, Timer, ServiceBus and Sys errors; match them with errors.Is.
var (
	ErrBindingNotFound  = errors.New("binding not found in invocation Data")
	ErrMetadataNotFound = errors.New("key not found in invocation Metadata")
)

// Invocation is one decoded host invocation request. Data holds each input binding by name and
// Metadata the trigger's binding data, both as the raw JSON the host sent. An Invocation is not
// modified by its methods and may be read from several goroutines.
type Invocation struct {
	FunctionName string // from the request path
	InvocationID string // X-Azure-Functions-InvocationId
	HostVersion  string // X-Azure-Functions-HostVersion
	Data         map[string]json.RawMessage
	Metadata     map[string]json.RawMessage

	// A Service Bus batch is read once per invocation (the span, the handler and the log line
	// all ask for it): Payloads(ServiceBusBinding) and ServiceBusBatch keep their answers here.
	batchOnce   sync.Once
	batchBodies [][]byte
	batchErr    error
	metaOnce    sync.Once
	metaN       int
	batchMeta   []ServiceBusMetadata
	batchMetaE  error
}

// Result is the handler's answer to an invocation. The host logs Logs and binds Outputs to output
// bindings by name. Mount writes a nil Outputs as {} and a nil Logs as [].
type Result struct {
	Outputs     map[string]any `json:"Outputs"`
	Logs        []string       `json:"Logs"`
	ReturnValue any            `json:"ReturnValue"`
	// Quiet marks an invocation that found nothing to do (an idle timer tick): Mount logs its
	// line at Debug instead of Info. It is not sent to the host.
	Quiet bool `json:"-"`
}

// DecodeInvocation reads the host's invocation request: the JSON object {"Data":{…},"Metadata":{…}}
// (either member may be absent or null and then reads as empty), the invocation headers, and the
// function name from the path. At most maxBytes of body are read (maxBytes <= 0 means
// DefaultMaxBodyBytes). Errors are *problem.Problem: 413 CodeInvocationTooLarge for a larger body,
// 400 CodeInvocationMalformed for an unreadable, empty or malformed one.
func DecodeInvocation(r *http.Request, maxBytes int64) (*Invocation, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBodyBytes
	}
	var body []byte
	if r.Body != nil {
		b, err := io.ReadAll(io.LimitReader(r.Body, maxBytes+1))
		if err != nil {
			return nil, problem.New(http.StatusBadRequest, CodeInvocationMalformed, "The invocation body could not be read.").WithCause(err)
		}
		body = b
	}
	if int64(len(body)) > maxBytes {
		return nil, problem.Newf(http.StatusRequestEntityTooLarge, CodeInvocationTooLarge,
			"The invocation body is larger than %d bytes.", maxBytes)
	}
	trimmed := trimJSONSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, problem.New(http.StatusBadRequest, CodeInvocationMalformed,
			`The invocation body must be a JSON object {"Data":{...},"Metadata":{...}}.`)
	}
	var wire struct {
		Data     map[string]json.RawMessage `json:"Data"`
		Metadata map[string]json.RawMessage `json:"Metadata"`
	}
	if err := json.Unmarshal(trimmed, &wire); err != nil {
		return nil, problem.New(http.StatusBadRequest, CodeInvocationMalformed,
			`The invocation body is not valid {"Data":{...},"Metadata":{...}} JSON.`).WithCause(err)
	}
	if wire.Data == nil {
		wire.Data = map[string]json.RawMessage{}
	}
	if wire.Metadata == nil {
		wire.Metadata = map[string]json.RawMessage{}
	}
	return &Invocation{
		FunctionName: strings.TrimPrefix(r.URL.Path, "/"),
		InvocationID: r.Header.Get(HeaderInvocationID),
		HostVersion:  r.Header.Get(HeaderHostVersion),
		Data:         wire.Data,
		Metadata:     wire.Metadata,
	}, nil
}

// lookup finds key in m: exactly, else case-insensitively (the first match in sorted key order).
func lookup(m map[string]json.RawMessage, key string) (json.RawMessage, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		if strings.EqualFold(k, key) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, false
	}
	slices.Sort(keys)
	return m[keys[0]], true
}

func bindingMalformed(detail string, cause error) error {
	return problem.New(http.StatusBadRequest, CodeBindingMalformed, detail).WithCause(cause)
}

// Payload returns the payload bytes of the Data binding named binding (matched exactly, else
// case-insensitively), after removing the encodings the host applies. The rules, in order:
//
//  1. A JSON object, array, number, boolean or null is the payload as sent.
//  2. A JSON string is read for its text t:
//     a. If t is JSON text, it is the payload — except that when t is itself a JSON string whose
//     content is again JSON text, t is a further quoting layer ("quoted twice") and is removed in
//     turn, up to 8 layers (more is an error). A JSON string whose content is not JSON text is
//     kept whole: it is the payload (the body was a JSON string value).
//     b. Else, if t is base64 (standard or URL alphabet, padded or not) and the decoded bytes are
//     JSON text, the decoded bytes are the payload. Base64 text of JSON text is never itself JSON
//     text (its first character would be one of C D I L M N O W Z b d e), so a. and b. never compete.
//     c. Else t is plain text and its bytes are the payload. Base64 whose decoded bytes are not JSON
//     text (binary, or prose) is therefore returned undecoded: it cannot be told apart from text.
//
// Ambiguities, settled in favour of JSON messages: a plain-text body that happens to be base64 of JSON
// text (e.g. "MTIz") reads as the decoded JSON ("123"); a body that is a JSON string whose content is
// JSON text (e.g. "\"42\"") reads as if quoted twice (42).
//
// Errors are *problem.Problem 400: CodeBindingMissing (wrapping ErrBindingNotFound) when there is no
// such binding, CodeBindingMalformed when its raw value is not valid JSON or is quoted too deeply.
func (inv *Invocation) Payload(binding string) ([]byte, error) {
	raw, ok := lookup(inv.Data, binding)
	if !ok {
		return nil, problem.Newf(http.StatusBadRequest, CodeBindingMissing,
			"The invocation has no %q binding.", binding).WithCause(fmt.Errorf("%w: %q", ErrBindingNotFound, binding))
	}
	b, err := unwrap(raw)
	if err != nil {
		return nil, bindingMalformed(fmt.Sprintf("The %q binding cannot be decoded.", binding), err)
	}
	return b, nil
}

// Bind decodes the payload of binding (see Payload) into v with json.Unmarshal; unknown fields are
// ignored. A payload that is not JSON for v is a *problem.Problem 400 CodeBindingMalformed.
func (inv *Invocation) Bind(binding string, v any) error {
	b, err := inv.Payload(binding)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return bindingMalformed(fmt.Sprintf("The %q binding is not the expected JSON.", binding), err)
	}
	return nil
}

// unwrap applies Payload's rules to one raw JSON value.
func unwrap(raw []byte) ([]byte, error) {
	raw = trimJSONSpace(raw)
	if len(raw) == 0 || raw[0] != '"' {
		if !json.Valid(raw) {
			return nil, errors.New("binding value is not valid JSON")
		}
		return raw, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil { // validates the string as it decodes it
		return nil, errors.New("binding value is not valid JSON")
	}
	for depth := 0; ; depth++ {
		t := []byte(s)
		if tt := trimJSONSpace(t); len(tt) > 0 && (tt[0] == '{' || tt[0] == '[') {
			// An object or array: returned as it is whether it is valid JSON or not (text that is
			// not JSON is not base64 either, and is returned as it is below too); the caller's
			// decoding judges it, so the body is not scanned once more here.
			return t, nil
		}
		if json.Valid(t) {
			tt := trimJSONSpace(t)
			if tt[0] != '"' {
				return t, nil
			}
			var inner string
			if err := json.Unmarshal(tt, &inner); err != nil {
				return nil, err
			}
			if !json.Valid([]byte(inner)) {
				return t, nil
			}
			if depth >= maxUnwrapDepth {
				return nil, fmt.Errorf("binding value is quoted more than %d times", maxUnwrapDepth)
			}
			s = inner
			continue
		}
		if b, ok := decodeBase64JSON(s); ok {
			return b, nil
		}
		return t, nil
	}
}

var base64Encodings = []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding}

// decodeBase64JSON decodes s as base64 in any alphabet and padding and reports whether that yields
// JSON text.
func decodeBase64JSON(s string) ([]byte, bool) {
	if s == "" {
		return nil, false
	}
	for _, enc := range base64Encodings {
		if b, err := enc.DecodeString(s); err == nil {
			if json.Valid(b) {
				return b, true
			}
		}
	}
	return nil, false
}

// trimJSONSpace removes JSON's insignificant white space (space, tab, CR, LF) around b; unlike
// bytes.TrimSpace it leaves other characters (form feed, NEL, …) that make JSON invalid.
func trimJSONSpace(b []byte) []byte {
	return bytes.Trim(b, " \t\r\n")
}

// metaValue returns the Metadata value under key (exact, else case-insensitive), treating JSON null as absent.
func (inv *Invocation) metaValue(key string) (json.RawMessage, bool) {
	raw, ok := lookup(inv.Metadata, key)
	if !ok || bytes.Equal(trimJSONSpace(raw), []byte("null")) {
		return nil, false
	}
	return raw, true
}

// metaString reads a metadata string: a JSON string (quoting layers around a JSON string removed), or
// a number or boolean as its JSON text. Absent or null is "".
func (inv *Invocation) metaString(key string) (string, error) {
	raw, ok := inv.metaValue(key)
	if !ok {
		return "", nil
	}
	return scalarString(raw)
}

func scalarString(raw json.RawMessage) (string, error) {
	raw = trimJSONSpace(raw)
	if len(raw) == 0 || raw[0] == '{' || raw[0] == '[' {
		return "", errors.New("not a scalar")
	}
	if raw[0] != '"' {
		if !json.Valid(raw) {
			return "", errors.New("not valid JSON")
		}
		return string(raw), nil
	}
	var s string
	for range maxUnwrapDepth {
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", err
		}
		next := trimJSONSpace([]byte(s))
		if len(next) == 0 || next[0] != '"' || !json.Valid(next) {
			return s, nil
		}
		raw = next
	}
	return s, nil
}

func (inv *Invocation) metaInt(key string) (int, error) {
	s, err := inv.metaString(key)
	if err != nil || s == "" {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(s))
}

func (inv *Invocation) metaTime(key string) (time.Time, error) {
	s, err := inv.metaString(key)
	if err != nil {
		return time.Time{}, err
	}
	return parseHostTime(s)
}

// metaObject reads a metadata object, sent as a JSON object or in any encoding Payload accepts.
// Numbers decode as json.Number.
func (inv *Invocation) metaObject(key string) (map[string]any, error) {
	raw, ok := inv.metaValue(key)
	if !ok {
		return nil, nil
	}
	b, err := unwrap(raw)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

// hostTimeLayouts are the layouts the host's DateTime and DateTimeOffset values arrive in. Layouts
// without a zone are read as UTC. RFC 3339 parsing accepts any number of fractional digits.
var hostTimeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"1/2/2006 15:04:05",
	"1/2/2006 3:04:05 PM",
	"1/2/2006 3:04:05 PM -07:00",
}

// parseHostTime parses a time the host sent, returning it in UTC; "" is the zero time.
func parseHostTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range hostTimeLayouts {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("unrecognised time %q", s)
}

// hostTime decodes a host time from JSON (a string in any of hostTimeLayouts, or null).
type hostTime struct{ time.Time }

// UnmarshalJSON implements json.Unmarshaler.
func (h *hostTime) UnmarshalJSON(b []byte) error {
	if bytes.Equal(trimJSONSpace(b), []byte("null")) {
		h.Time = time.Time{}
		return nil
	}
	s, err := scalarString(b)
	if err != nil {
		return err
	}
	h.Time, err = parseHostTime(s)
	return err
}

// ServiceBusMetadata is the Service Bus trigger's binding data the handler needs.
type ServiceBusMetadata struct {
	MessageID       string
	DeliveryCount   int
	EnqueuedTimeUTC time.Time
	ContentType     string
	CorrelationID   string
	// Subject is the message's Subject (sent as Label by older extensions).
	Subject string
	// ApplicationProperties merges the host's ApplicationProperties and UserProperties (the older
	// name); on a key present in both, ApplicationProperties wins. Numbers are json.Number. Never nil.
	ApplicationProperties map[string]any
}

// ServiceBus reads the Service Bus binding data from Metadata. Keys are matched case-insensitively;
// absent or null keys leave their field zero. Values may be JSON strings (numbers and times are parsed
// from them) and objects may arrive in any encoding Payload accepts. A present but unreadable value
// is a *problem.Problem 400 CodeBindingMalformed naming the key.
func (inv *Invocation) ServiceBus() (ServiceBusMetadata, error) {
	var md ServiceBusMetadata
	var errs []error
	wrap := func(key string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("metadata %s: %w", key, err))
		}
	}
	var err error
	md.MessageID, err = inv.metaString("MessageId")
	wrap("MessageId", err)
	md.DeliveryCount, err = inv.metaInt("DeliveryCount")
	wrap("DeliveryCount", err)
	md.EnqueuedTimeUTC, err = inv.metaTime("EnqueuedTimeUtc")
	wrap("EnqueuedTimeUtc", err)
	md.ContentType, err = inv.metaString("ContentType")
	wrap("ContentType", err)
	md.CorrelationID, err = inv.metaString("CorrelationId")
	wrap("CorrelationId", err)
	md.Subject, err = inv.metaString("Subject")
	wrap("Subject", err)
	if md.Subject == "" {
		md.Subject, err = inv.metaString("Label")
		wrap("Label", err)
	}
	md.ApplicationProperties = map[string]any{}
	for _, key := range []string{"UserProperties", "ApplicationProperties"} { // later wins
		props, err := inv.metaObject(key)
		wrap(key, err)
		for k, v := range props {
			md.ApplicationProperties[k] = v
		}
	}
	if len(errs) > 0 {
		return md, bindingMalformed("The Service Bus metadata cannot be decoded.", errors.Join(errs...))
	}
	return md, nil
}

// TimerInfo is a timer trigger's binding data. As the host sends it, Last is the previous occurrence,
// Next the occurrence being run now (or, for a run on start-up, the next due one) and LastUpdated when
// the schedule status was last recorded; all are zero when the host keeps no schedule status.
type TimerInfo struct {
	Last, Next, LastUpdated time.Time
	IsPastDue               bool
}

// Timer reads the timer binding named binding (normally TimerBinding) from Data, in any encoding
// Payload accepts. Errors are those of Payload, or a *problem.Problem 400 CodeBindingMalformed.
func (inv *Invocation) Timer(binding string) (TimerInfo, error) {
	b, err := inv.Payload(binding)
	if err != nil {
		return TimerInfo{}, err
	}
	var wire struct {
		ScheduleStatus *struct {
			Last, Next, LastUpdated hostTime
		}
		IsPastDue bool
	}
	if err := json.Unmarshal(b, &wire); err != nil {
		return TimerInfo{}, bindingMalformed(fmt.Sprintf("The %q timer binding cannot be decoded.", binding), err)
	}
	ti := TimerInfo{IsPastDue: wire.IsPastDue}
	if st := wire.ScheduleStatus; st != nil {
		ti.Last, ti.Next, ti.LastUpdated = st.Last.Time, st.Next.Time, st.LastUpdated.Time
	}
	return ti, nil
}

// SysInfo is the "sys" metadata the host adds to every invocation.
type SysInfo struct {
	MethodName string
	UtcNow     time.Time
	RandGuid   string
}

// Sys reads Metadata's "sys" object. Its absence is a *problem.Problem 400 CodeBindingMissing wrapping
// ErrMetadataNotFound; an unreadable value is a 400 CodeBindingMalformed.
func (inv *Invocation) Sys() (SysInfo, error) {
	raw, ok := inv.metaValue("sys")
	if !ok {
		return SysInfo{}, problem.New(http.StatusBadRequest, CodeBindingMissing,
			`The invocation has no "sys" metadata.`).WithCause(fmt.Errorf("%w: sys", ErrMetadataNotFound))
	}
	b, err := unwrap(raw)
	if err != nil {
		return SysInfo{}, bindingMalformed(`The "sys" metadata cannot be decoded.`, err)
	}
	var wire struct {
		MethodName string
		UtcNow     hostTime
		RandGuid   string
	}
	if err := json.Unmarshal(b, &wire); err != nil {
		return SysInfo{}, bindingMalformed(`The "sys" metadata cannot be decoded.`, err)
	}
	return SysInfo{MethodName: wire.MethodName, UtcNow: wire.UtcNow.Time, RandGuid: wire.RandGuid}, nil
}
