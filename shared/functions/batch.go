package functions

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"spine/shared/problem"
)

// A Service Bus trigger with "cardinality": "many" hands the custom handler a batch of messages per
// invocation. The host (Microsoft.Azure.WebJobs.Extensions.ServiceBus 5.x through the custom
// handler's HTTP worker) serializes each array it passes with JSON.NET's SerializeObject, so every
// array arrives as a JSON string holding the array's JSON text:
//
//	"Data":     {"message": "[\"<body 1>\",\"<body 2>\"]"}            (dataType string: each body as its text)
//	"Metadata": {"MessageIdArray": "[\"m1\",\"m2\"]", "DeliveryCountArray": "[1,3]",
//	             "EnqueuedTimeUtcArray": "[…]", "ContentTypeArray": "[…]", "CorrelationIdArray": "[…]",
//	             "SubjectArray"/"LabelArray": "[…]", "ApplicationPropertiesArray"/"UserPropertiesArray": "[{…},{}]",
//	             "sys": {…}, …}
//
// There are no single-message keys in a batch. Element i of every array describes message i, in
// the order received. This shape is read from the host's and the extension's source (the notes on
// issue 10); no Functions host runs on these machines to observe it, so the readers below also
// accept the arrays sent as plain JSON arrays, and each body in any encoding Payload accepts.

// IsServiceBusBatch reports whether inv carries a batch of Service Bus messages (a trigger with
// CardinalityMany): its metadata has MessageIdArray.
func (inv *Invocation) IsServiceBusBatch() bool {
	_, ok := inv.metaValue("MessageIdArray")
	return ok
}

// Payloads returns the message bodies of a batch binding, in order: the binding's value is a JSON
// array (as the host sends it, wrapped in a JSON string, or plain), each element a body in any
// encoding Payload accepts. A missing binding or one that is not an array is a *problem.Problem
// 400 (CodeBindingMissing, CodeBindingMalformed).
//
// The bodies of ServiceBusBinding are decoded once per invocation; later calls return the same
// slices (do not modify them).
func (inv *Invocation) Payloads(binding string) ([][]byte, error) {
	if binding != ServiceBusBinding {
		return inv.payloads(binding)
	}
	inv.batchOnce.Do(func() { inv.batchBodies, inv.batchErr = inv.payloads(binding) })
	return inv.batchBodies, inv.batchErr
}

func (inv *Invocation) payloads(binding string) ([][]byte, error) {
	raw, ok := lookup(inv.Data, binding)
	if !ok {
		return nil, problem.Newf(http.StatusBadRequest, CodeBindingMissing,
			"The invocation has no %q binding.", binding).WithCause(fmt.Errorf("%w: %q", ErrBindingNotFound, binding))
	}
	elems, err := jsonArray(raw)
	if err != nil {
		return nil, bindingMalformed(fmt.Sprintf("The %q binding is not a batch of messages.", binding), err)
	}
	out := make([][]byte, len(elems))
	for i, e := range elems {
		if out[i], err = unwrap(e); err != nil {
			return nil, bindingMalformed(fmt.Sprintf("Message %d of the %q binding cannot be decoded.", i, binding), err)
		}
	}
	return out, nil
}

// ServiceBusBatch reads the metadata of a batch of n messages from the …Array keys (matched
// case-insensitively): element i describes message i. An absent key leaves its field zero in every
// message; a key whose array does not hold n elements, or an element that cannot be read, is a
// *problem.Problem 400 CodeBindingMalformed naming the key.
//
// The metadata is read once per invocation (for the first n asked; later calls with another n read
// it again); later calls return the same slice (do not modify it).
func (inv *Invocation) ServiceBusBatch(n int) ([]ServiceBusMetadata, error) {
	first := false
	inv.metaOnce.Do(func() {
		first = true
		inv.metaN = n
		inv.batchMeta, inv.batchMetaE = inv.serviceBusBatch(n)
	})
	if !first && inv.metaN != n {
		return inv.serviceBusBatch(n)
	}
	return inv.batchMeta, inv.batchMetaE
}

func (inv *Invocation) serviceBusBatch(n int) ([]ServiceBusMetadata, error) {
	md := make([]ServiceBusMetadata, n)
	for i := range md {
		md[i].ApplicationProperties = map[string]any{}
	}
	var errs []error
	read := func(key string, set func(i int, raw json.RawMessage) error) bool {
		raw, ok := inv.metaValue(key)
		if !ok {
			return false
		}
		elems, err := jsonArray(raw)
		if err == nil && len(elems) != n {
			err = fmt.Errorf("%d elements for %d messages", len(elems), n)
		}
		for i := 0; err == nil && i < len(elems); i++ {
			if isNull(elems[i]) {
				continue
			}
			if err = set(i, elems[i]); err != nil {
				err = fmt.Errorf("element %d: %w", i, err)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("metadata %s: %w", key, err))
		}
		return true
	}
	str := func(field func(*ServiceBusMetadata) *string) func(int, json.RawMessage) error {
		return func(i int, raw json.RawMessage) (err error) {
			*field(&md[i]), err = scalarString(raw)
			return err
		}
	}
	read("MessageIdArray", str(func(m *ServiceBusMetadata) *string { return &m.MessageID }))
	read("ContentTypeArray", str(func(m *ServiceBusMetadata) *string { return &m.ContentType }))
	read("CorrelationIdArray", str(func(m *ServiceBusMetadata) *string { return &m.CorrelationID }))
	if !read("SubjectArray", str(func(m *ServiceBusMetadata) *string { return &m.Subject })) {
		read("LabelArray", str(func(m *ServiceBusMetadata) *string { return &m.Subject }))
	}
	read("DeliveryCountArray", func(i int, raw json.RawMessage) error {
		s, err := scalarString(raw)
		if err == nil {
			_, err = fmt.Sscanf(s, "%d", &md[i].DeliveryCount)
		}
		return err
	})
	// EnqueuedTimeArray holds DateTimeOffsets (with their offset); EnqueuedTimeUtcArray DateTimes
	// whose kind JSON.NET may write without one (UTC by the extension's own account).
	setTime := func(i int, raw json.RawMessage) error {
		s, err := scalarString(raw)
		if err != nil {
			return err
		}
		t, err := parseHostTime(s)
		md[i].EnqueuedTimeUTC = t.UTC()
		return err
	}
	if !read("EnqueuedTimeArray", setTime) {
		read("EnqueuedTimeUtcArray", setTime)
	}
	// The host sends the same properties under both names; the older one is read only when the
	// newer is absent.
	setProps := func(i int, raw json.RawMessage) error {
		m, err := decodeObject(raw)
		for k, v := range m {
			md[i].ApplicationProperties[k] = v
		}
		return err
	}
	if !read("ApplicationPropertiesArray", setProps) {
		read("UserPropertiesArray", setProps)
	}
	if len(errs) > 0 {
		return nil, bindingMalformed("The invocation's Service Bus batch metadata cannot be read.", errors.Join(errs...))
	}
	return md, nil
}

// ServiceBusBatch builds the Data value of a batch binding and the invocation's Metadata exactly
// as the host sends them for a trigger with CardinalityMany and dataType string (see the shape
// above): bodies[i] with metas[i]. For the in-process transport and tests.
func ServiceBusBatch(bodies [][]byte, metas []ServiceBusMetadata) (data any, metadata map[string]any) {
	n := len(bodies)
	texts := make([]string, n)
	ids, types, corrs, subjects := make([]any, n), make([]any, n), make([]any, n), make([]any, n)
	counts, times, offsets, props := make([]int, n), make([]string, n), make([]string, n), make([]map[string]any, n)
	for i, b := range bodies {
		m := metas[i]
		texts[i] = string(b)
		ids[i], counts[i], subjects[i] = m.MessageID, m.DeliveryCount, m.Subject
		times[i] = m.EnqueuedTimeUTC.UTC().Format(hostUTCLayout)
		offsets[i] = m.EnqueuedTimeUTC.UTC().Format("2006-01-02T15:04:05.9999999+00:00")
		types[i], corrs[i] = nullIfEmpty(m.ContentType), nullIfEmpty(m.CorrelationID)
		props[i] = m.ApplicationProperties
		if props[i] == nil {
			props[i] = map[string]any{}
		}
	}
	wrap := func(v any) string { // JSON.NET's SerializeObject of the array, passed as a string
		b, _ := json.Marshal(v) // strings, numbers and maps of JSON values cannot fail
		return string(b)
	}
	return wrap(texts), map[string]any{
		"MessageIdArray":             wrap(ids),
		"DeliveryCountArray":         wrap(counts),
		"EnqueuedTimeUtcArray":       wrap(times),
		"EnqueuedTimeArray":          wrap(offsets),
		"ContentTypeArray":           wrap(types),
		"CorrelationIdArray":         wrap(corrs),
		"SubjectArray":               wrap(subjects),
		"LabelArray":                 wrap(subjects),
		"ApplicationPropertiesArray": wrap(props),
		"UserPropertiesArray":        wrap(props),
	}
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// jsonArray reads a JSON array sent plain or wrapped in JSON strings, and returns its elements.
func jsonArray(raw json.RawMessage) ([]json.RawMessage, error) {
	b, err := unwrap(raw)
	if err != nil {
		return nil, err
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(b, &elems); err != nil || elems == nil {
		return nil, errors.New("not a JSON array")
	}
	return elems, nil
}

func isNull(raw json.RawMessage) bool { return string(trimJSONSpace(raw)) == "null" }

// decodeObject reads a JSON object sent plain or in any encoding Payload accepts; numbers decode
// as json.Number.
func decodeObject(raw json.RawMessage) (map[string]any, error) {
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
