package blob

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	azblobblob "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"

	"spine/shared/telemetry"
)

// Written is what a streamed upload wrote: its size and the SHA-256 of its bytes, computed on
// the way (the artifact's evidence, recorded beside its name).
type Written struct {
	Size   int64
	SHA256 [32]byte
}

// StreamBlockSize and StreamConcurrency bound a streamed upload's memory: at most
// StreamConcurrency blocks of StreamBlockSize bytes are buffered at once.
const (
	StreamBlockSize   = 4 << 20
	StreamConcurrency = 2
)

// PutStreamCreateOnly streams r into container/name create-only (If-None-Match: * on the
// commit of the block list), in blocks of StreamBlockSize with at most StreamConcurrency in
// flight, so its memory is bounded whatever r's length. An existing blob yields ErrExists and is
// left untouched (the staged blocks of the refused upload are discarded by the service). A
// failure of r is returned as it is (wrapped), and nothing is committed.
func (s *Store) PutStreamCreateOnly(ctx context.Context, container, name string, r io.Reader, contentType string) (w Written, err error) {
	ctx, end := observe(ctx, "put", container, name)
	defer func() { end(err, w.Size) }()
	h := sha256.New()
	cr := &countingReader{r: r, h: h}
	etagAny := azcore.ETagAny
	_, err = s.c.UploadStream(ctx, container, name, cr, &azblob.UploadStreamOptions{
		BlockSize:        StreamBlockSize,
		Concurrency:      StreamConcurrency,
		HTTPHeaders:      &azblobblob.HTTPHeaders{BlobContentType: &contentType},
		AccessConditions: &azblob.AccessConditions{ModifiedAccessConditions: &azblobblob.ModifiedAccessConditions{IfNoneMatch: &etagAny}},
	})
	if cr.err != nil {
		return Written{}, fmt.Errorf("blob: reading the upload's source: %w", cr.err)
	}
	if err != nil {
		if bloberror.HasCode(err, bloberror.BlobAlreadyExists, bloberror.ConditionNotMet) {
			return Written{}, fmt.Errorf("%w: %s/%s", ErrExists, container, name)
		}
		return Written{}, translate(err)
	}
	w.Size = cr.n
	copy(w.SHA256[:], h.Sum(nil))
	return w, nil
}

// countingReader hashes and counts what the upload reads, and keeps the source's own error
// apart from the SDK's (so a failing producer is reported as such, not as "storage unavailable").
type countingReader struct {
	r   io.Reader
	h   hash.Hash
	n   int64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	if err != nil && !errors.Is(err, io.EOF) {
		c.err = err
	}
	return n, err
}

// Properties are a blob's system properties.
type Properties struct {
	Size         int64
	ContentType  string
	ETag         string
	AccessTier   string
	LastModified time.Time
}

// Open streams container/name; the caller closes the reader. ErrNotFound when it does not exist.
func (s *Store) Open(ctx context.Context, container, name string) (rc io.ReadCloser, p Properties, err error) {
	ctx, end := observe(ctx, "get", container, name)
	resp, err := s.c.DownloadStream(ctx, container, name, nil)
	if err != nil {
		err = translateNotFound(err, container, name)
		end(err, telemetry.NoSize)
		return nil, Properties{}, err
	}
	p = Properties{Size: deref64(resp.ContentLength), ContentType: derefs(resp.ContentType), LastModified: derefTime(resp.LastModified)}
	if resp.ETag != nil {
		p.ETag = string(*resp.ETag)
	}
	end(nil, p.Size)
	return resp.Body, p, nil
}

// Properties reads container/name's properties. ErrNotFound when it does not exist.
func (s *Store) Properties(ctx context.Context, container, name string) (p Properties, err error) {
	ctx, end := observe(ctx, "properties", container, name)
	defer func() { end(err, telemetry.NoSize) }()
	resp, err := s.c.ServiceClient().NewContainerClient(container).NewBlobClient(name).GetProperties(ctx, nil)
	if err != nil {
		return Properties{}, translateNotFound(err, container, name)
	}
	p = Properties{Size: deref64(resp.ContentLength), ContentType: derefs(resp.ContentType), AccessTier: derefs(resp.AccessTier),
		LastModified: derefTime(resp.LastModified)}
	if resp.ETag != nil {
		p.ETag = string(*resp.ETag)
	}
	return p, nil
}

// Tier is a blob access tier.
type Tier string

// The access tiers SetTier accepts.
const (
	TierHot     Tier = Tier(azblobblob.AccessTierHot)
	TierCool    Tier = Tier(azblobblob.AccessTierCool)
	TierCold    Tier = Tier(azblobblob.AccessTierCold)
	TierArchive Tier = Tier(azblobblob.AccessTierArchive)
)

// SetTier moves container/name to tier (an archived blob must be rehydrated before it can be
// read again). ErrNotFound when it does not exist.
func (s *Store) SetTier(ctx context.Context, container, name string, tier Tier) (err error) {
	switch tier {
	case TierHot, TierCool, TierCold, TierArchive:
	default:
		return fmt.Errorf("blob: %q is not an access tier", tier)
	}
	ctx, end := observe(ctx, "set_tier", container, name)
	defer func() { end(err, telemetry.NoSize) }()
	_, err = s.c.ServiceClient().NewContainerClient(container).NewBlobClient(name).SetTier(ctx, azblobblob.AccessTier(tier), nil)
	if err != nil {
		return translateNotFound(err, container, name)
	}
	return nil
}

// Delete removes container/name (with its snapshots). A blob that does not exist is not an
// error: deleting is idempotent.
func (s *Store) Delete(ctx context.Context, container, name string) (err error) {
	ctx, end := observe(ctx, "delete", container, name)
	defer func() { end(err, telemetry.NoSize) }()
	include := azblobblob.DeleteSnapshotsOptionTypeInclude
	_, err = s.c.DeleteBlob(ctx, container, name, &azblob.DeleteBlobOptions{DeleteSnapshots: &include})
	if err == nil || bloberror.HasCode(err, bloberror.BlobNotFound) {
		return nil
	}
	return translate(err)
}

func translateNotFound(err error, container, name string) error {
	if bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound) {
		return fmt.Errorf("%w: %s/%s", ErrNotFound, container, name)
	}
	return translate(err)
}

func deref64(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

func derefs(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func derefTime(p *time.Time) time.Time {
	if p == nil {
		return time.Time{}
	}
	return p.UTC()
}
