package tenants

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"

	"spine/shared/tenancy"
)

// Rendered is a tenant as GET /tenants/{id} answers it, ready to send: Body is the JSON document
// exactly as echo's c.JSON writes it (compact, with the trailing newline), Version is the version
// its ETag names. Status and Slug ride along for the tenant directory and the by-slug check, so
// neither decodes the body. The read cache holds Rendered values, so a cached read is one Redis
// GET and a write of Body: nothing is decoded or encoded again. Body may be shared by concurrent
// readers: never modify it.
type Rendered struct {
	Version int64
	Status  tenancy.Status
	Slug    Slug
	Body    []byte
}

// render encodes v in the API's shape (toJSON), as writeView would answer it.
func render(v View) (Rendered, error) {
	var buf bytes.Buffer
	// An Encoder, as echo's DefaultJSONSerializer: the same escaping and the trailing newline.
	if err := json.NewEncoder(&buf).Encode(toJSON(v.Tenant, v.Steps)); err != nil {
		return Rendered{}, err
	}
	return Rendered{Version: v.Tenant.Version, Status: v.Tenant.Status, Slug: v.Tenant.Slug, Body: buf.Bytes()}, nil
}

// renderedCodec stores a Rendered in Redis as one header line and the body:
//
//	t1 <version> <status> <slug>\n<body>
//
// Slugs and statuses hold no spaces or newlines. No JSON document starts with "t1 ", so a value
// of the shape cached before (a JSON view) reads as a miss and is overwritten, and a release
// that still caches that shape reads this one as a miss too: the key can stay what it was.
type renderedCodec struct{}

const renderedMagic = "t1 "

var errRenderedShape = errors.New("tenants: the cached value is not a rendered tenant")

// Encode implements cache.Codec.
func (renderedCodec) Encode(r Rendered) ([]byte, error) {
	b := make([]byte, 0, len(renderedMagic)+len(r.Status)+len(r.Slug)+24+len(r.Body))
	b = append(b, renderedMagic...)
	b = strconv.AppendInt(b, r.Version, 10)
	b = append(b, ' ')
	b = append(b, r.Status...)
	b = append(b, ' ')
	b = append(b, r.Slug...)
	b = append(b, '\n')
	return append(b, r.Body...), nil
}

// Decode implements cache.Codec. Body aliases b.
func (renderedCodec) Decode(b []byte) (Rendered, error) {
	if !bytes.HasPrefix(b, []byte(renderedMagic)) {
		return Rendered{}, errRenderedShape
	}
	nl := bytes.IndexByte(b, '\n')
	if nl < 0 {
		return Rendered{}, errRenderedShape
	}
	head := b[len(renderedMagic):nl]
	sp1 := bytes.IndexByte(head, ' ')
	if sp1 < 0 {
		return Rendered{}, errRenderedShape
	}
	rest := head[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 < 0 {
		return Rendered{}, errRenderedShape
	}
	version, err := strconv.ParseInt(string(head[:sp1]), 10, 64)
	if err != nil {
		return Rendered{}, errRenderedShape
	}
	status := statusOf(rest[:sp2])
	if status == "" || sp2+1 >= len(rest) {
		return Rendered{}, errRenderedShape
	}
	return Rendered{Version: version, Status: status, Slug: Slug(rest[sp2+1:]), Body: b[nl+1:]}, nil
}

// statusOf maps the bytes of a status to its constant (no allocation), or "" for anything else.
func statusOf(b []byte) tenancy.Status {
	for _, s := range []tenancy.Status{tenancy.StatusActive, tenancy.StatusProvisioning, tenancy.StatusSuspended, tenancy.StatusDecommissioned} {
		if string(b) == string(s) {
			return s
		}
	}
	return ""
}
