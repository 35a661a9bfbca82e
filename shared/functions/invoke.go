package functions

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/google/uuid"
)

// StandaloneHostVersion is the host version Invoke claims, in X-Azure-Functions-HostVersion and User-Agent.
const StandaloneHostVersion = "4.x-standalone"

// Time layouts of the host's serializer: DateTimeOffset values ("2026-11-26T20:00:00+00:00") and UTC
// DateTime values with seven fractional digits ("2026-11-26T20:00:10.0123456Z").
const (
	hostOffsetLayout = "2006-01-02T15:04:05.9999999-07:00"
	hostUTCLayout    = "2006-01-02T15:04:05.0000000Z07:00"
)

// Invoke plays the host: it sends h exactly the invocation request the host would — POST /<name> with
// the JSON body {"Data":data,"Metadata":metadata} (nil maps sent as {}), a new
// X-Azure-Functions-InvocationId, X-Azure-Functions-HostVersion StandaloneHostVersion, User-Agent
// Azure-Functions-Host/StandaloneHostVersion and Content-Type application/json — served in-process
// through a response recorder, on ctx. It returns the status, the decoded Result when the status is
// 2xx, and the raw response body. err reports only what prevented an answer (ctx already done, data
// that cannot be encoded) or a 2xx body that is not a Result; a non-2xx status is not an error here,
// it is the failed invocation's outcome. Invoke is safe for concurrent use if h is.
func Invoke(ctx context.Context, h http.Handler, name string, data, metadata map[string]any) (status int, res *Result, body []byte, err error) {
	if name == "" {
		return 0, nil, nil, errors.New("functions: Invoke needs a function name")
	}
	if err := ctx.Err(); err != nil {
		return 0, nil, nil, err
	}
	if data == nil {
		data = map[string]any{}
	}
	if metadata == nil {
		metadata = map[string]any{}
	}
	reqBody, err := json.Marshal(struct {
		Data     map[string]any `json:"Data"`
		Metadata map[string]any `json:"Metadata"`
	}{data, metadata})
	if err != nil {
		return 0, nil, nil, fmt.Errorf("functions: encode invocation of %s: %w", name, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "/"+name, bytes.NewReader(reqBody))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("functions: build invocation of %s: %w", name, err)
	}
	req.RequestURI = "/" + name
	req.Host = "127.0.0.1"
	req.RemoteAddr = "127.0.0.1:0"
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderInvocationID, uuid.NewString())
	req.Header.Set(HeaderHostVersion, StandaloneHostVersion)
	req.Header.Set("User-Agent", "Azure-Functions-Host/"+StandaloneHostVersion)

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	status, body = rec.Code, rec.Body.Bytes()
	if status < 200 || status > 299 {
		return status, nil, body, nil
	}
	res = &Result{}
	if err := json.Unmarshal(body, res); err != nil {
		return status, nil, body, fmt.Errorf("functions: %s answered %d with a body that is not a Result: %w", name, status, err)
	}
	return status, res, body, nil
}

// TimerData returns the Data of a timer invocation as the host sends it (host-protocol/
// timer-invocation.json): the TimerBinding binding with Schedule, ScheduleStatus {Last, Next,
// LastUpdated = last} in the host's time format, and IsPastDue.
func TimerData(last, next time.Time, pastDue bool) map[string]any {
	return map[string]any{
		TimerBinding: map[string]any{
			"Schedule": map[string]any{"AdjustForDST": true},
			"ScheduleStatus": map[string]any{
				"Last":        last.UTC().Format(hostOffsetLayout),
				"Next":        next.UTC().Format(hostOffsetLayout),
				"LastUpdated": last.UTC().Format(hostOffsetLayout),
			},
			"IsPastDue": pastDue,
		},
	}
}

// SysMetadata returns the Metadata every host invocation carries: {"sys": {MethodName: name,
// UtcNow: now, RandGuid: a new UUID}}.
func SysMetadata(name string, now time.Time) map[string]any {
	return map[string]any{
		"sys": map[string]any{
			"MethodName": name,
			"UtcNow":     now.UTC().Format(hostUTCLayout),
			"RandGuid":   uuid.NewString(),
		},
	}
}

// Encoding is a way the host encodes a Service Bus message body in the invocation's Data.
type Encoding int

// The host's encodings of a message body.
const (
	// EncodingObject embeds a body that is a JSON object or array as that JSON value. Other bodies
	// cannot be embedded unambiguously and are encoded as EncodingString.
	EncodingObject Encoding = iota
	// EncodingString sends a JSON string holding the body's text. Invalid UTF-8 does not survive:
	// use EncodingBase64 for binary bodies.
	EncodingString
	// EncodingDoubleQuoted sends a JSON string holding the JSON string of the body's text (quoted
	// twice), as in host-protocol/servicebus-invocation.json.
	EncodingDoubleQuoted
	// EncodingBase64 sends a JSON string holding the standard, padded base64 of the body
	// (a binding with "dataType": "binary").
	EncodingBase64
)

// String names the encoding.
func (e Encoding) String() string {
	switch e {
	case EncodingObject:
		return "object"
	case EncodingString:
		return "string"
	case EncodingDoubleQuoted:
		return "double-quoted"
	case EncodingBase64:
		return "base64"
	}
	return fmt.Sprintf("Encoding(%d)", int(e))
}

// ServiceBusMessage returns, as the host would send them, the ServiceBusBinding value of Data for a
// message whose body is body, encoded with enc (an unknown enc is treated as EncodingString), and the
// Service Bus Metadata for meta: MessageId, DeliveryCount, EnqueuedTimeUtc (host format),
// ContentType, CorrelationId (null when empty), Subject and ApplicationProperties (always an object).
// The caller adds the "sys" entry (SysMetadata) and wraps data as {ServiceBusBinding: data}.
func ServiceBusMessage(body []byte, enc Encoding, meta ServiceBusMetadata) (data any, metadata map[string]any) {
	switch enc {
	case EncodingObject:
		if t := trimJSONSpace(body); len(t) > 0 && (t[0] == '{' || t[0] == '[') && json.Valid(t) {
			data = json.RawMessage(t)
		} else {
			data = string(body)
		}
	case EncodingDoubleQuoted:
		once, _ := json.Marshal(string(body)) // marshalling a string cannot fail
		data = string(once)
	case EncodingBase64:
		data = base64.StdEncoding.EncodeToString(body)
	default:
		data = string(body)
	}
	var correlationID any
	if meta.CorrelationID != "" {
		correlationID = meta.CorrelationID
	}
	props := meta.ApplicationProperties
	if props == nil {
		props = map[string]any{}
	}
	metadata = map[string]any{
		"MessageId":             meta.MessageID,
		"DeliveryCount":         meta.DeliveryCount,
		"EnqueuedTimeUtc":       meta.EnqueuedTimeUTC.UTC().Format(hostUTCLayout),
		"ContentType":           meta.ContentType,
		"CorrelationId":         correlationID,
		"Subject":               meta.Subject,
		"ApplicationProperties": props,
	}
	return data, metadata
}
