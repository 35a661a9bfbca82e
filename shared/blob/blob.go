// Package blob writes Spine's artifacts to Azure Blob Storage (Azurite locally). Artifacts are
// written create-only (If-None-Match: *): a name is written once and never overwritten, so a retry
// can never replace what a reader may already have.
package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	azblobblob "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
)

// Errors callers test with errors.Is. SDK error text (which names URLs) never leaves this package
// except wrapped behind these.
var (
	ErrExists      = errors.New("blob: already exists")
	ErrNotFound    = errors.New("blob: not found")
	ErrUnavailable = errors.New("blob: storage unavailable")
)

// Store writes and reads blobs of one storage account. Safe for concurrent use.
type Store struct{ c *azblob.Client }

// Open connects with a connection string (Azurite, local runs) or, when connString is empty, with
// the account URL and the managed identity (DefaultAzureCredential; AZURE_CLIENT_ID picks the
// user-assigned identity).
func Open(connString, accountURL string) (*Store, error) {
	opts := &azblob.ClientOptions{ClientOptions: azcore.ClientOptions{
		Retry: policy.RetryOptions{MaxRetries: 2, TryTimeout: 10 * time.Second},
	}}
	if connString != "" {
		c, err := azblob.NewClientFromConnectionString(connString, opts)
		if err != nil {
			return nil, errors.New("blob: the storage connection string is malformed")
		}
		return &Store{c: c}, nil
	}
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		return nil, fmt.Errorf("blob: credential: %w", err)
	}
	c, err := azblob.NewClient(accountURL, cred, opts)
	if err != nil {
		return nil, errors.New("blob: the storage account URL is malformed")
	}
	return &Store{c: c}, nil
}

// EnsureContainer creates container if it does not exist. Deployments create containers with
// Pulumi; this is for local stacks and tests.
func (s *Store) EnsureContainer(ctx context.Context, container string) error {
	_, err := s.c.CreateContainer(ctx, container, nil)
	if err == nil || bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		return nil
	}
	return translate(err)
}

// PutCreateOnly writes data at container/name only if no blob exists there (If-None-Match: *).
// An existing blob yields ErrExists and is left untouched.
func (s *Store) PutCreateOnly(ctx context.Context, container, name string, data []byte, contentType string) error {
	etagAny := azcore.ETagAny
	_, err := s.c.UploadBuffer(ctx, container, name, data, &azblob.UploadBufferOptions{
		HTTPHeaders:      &azblobblob.HTTPHeaders{BlobContentType: &contentType},
		AccessConditions: &azblob.AccessConditions{ModifiedAccessConditions: &azblobblob.ModifiedAccessConditions{IfNoneMatch: &etagAny}},
	})
	if err == nil {
		return nil
	}
	if bloberror.HasCode(err, bloberror.BlobAlreadyExists, bloberror.ConditionNotMet) {
		return fmt.Errorf("%w: %s/%s", ErrExists, container, name)
	}
	return translate(err)
}

// Get reads a whole blob.
func (s *Store) Get(ctx context.Context, container, name string) ([]byte, error) {
	resp, err := s.c.DownloadStream(ctx, container, name, nil)
	if err != nil {
		if bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound) {
			return nil, fmt.Errorf("%w: %s/%s", ErrNotFound, container, name)
		}
		return nil, translate(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return nil, translate(err)
	}
	return buf.Bytes(), nil
}

// Name builds a blob name by Spine's convention: <tenantId>/<kind>/<yyyy>/<mm>/<dd>/<id>.<ext>.
func Name(tenantID, kind string, at time.Time, id, ext string) string {
	at = at.UTC()
	return fmt.Sprintf("%s/%s/%04d/%02d/%02d/%s.%s", tenantID, kind, at.Year(), int(at.Month()), at.Day(), id, strings.TrimPrefix(ext, "."))
}

func translate(err error) error {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		// Keep only the status and the service's error code: the full text names the account URL.
		return fmt.Errorf("%w: status %d %s", ErrUnavailable, re.StatusCode, re.ErrorCode)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return ErrUnavailable
}
