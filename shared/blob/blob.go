// Package blob writes Spine's artifacts to Azure Blob Storage (Azurite locally). Artifacts are
// written create-only (If-None-Match: *): a name is written once and never overwritten, so a retry
// can never replace what a reader may already have.
//
// Telemetry: every call is a store operation (telemetry.StoreBlob; op put, get or
// ensure_container) recorded for the container's service (containers are named after the service
// that owns them) and the tenant the blob name starts with, with its bytes, under a client span.
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
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"spine/shared/telemetry"
)

// Errors callers test with errors.Is. SDK error text (which names URLs) never leaves this package
// except wrapped behind these.
var (
	ErrExists      = errors.New("blob: already exists")
	ErrNotFound    = errors.New("blob: not found")
	ErrUnavailable = errors.New("blob: storage unavailable")
)

// Store writes and reads blobs of one storage account. Safe for concurrent use.
type Store struct {
	c *azblob.Client
	// sharedKey signs SAS URLs when the Store was opened with a connection string (Azurite);
	// nil with the managed identity, which signs with a user delegation key (delegation).
	sharedKey  *azblob.SharedKeyCredential
	delegation delegationCache
	tokenCred  bool // opened with the managed identity
}

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
		st := &Store{c: c}
		if name, key := connStringAccount(connString); name != "" && key != "" {
			if st.sharedKey, err = azblob.NewSharedKeyCredential(name, key); err != nil {
				return nil, errors.New("blob: the storage connection string's account key is malformed")
			}
		}
		return st, nil
	}
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		return nil, fmt.Errorf("blob: credential: %w", err)
	}
	c, err := azblob.NewClient(accountURL, cred, opts)
	if err != nil {
		return nil, errors.New("blob: the storage account URL is malformed")
	}
	return &Store{c: c, tokenCred: true}, nil
}

// EnsureContainer creates container if it does not exist. Deployments create containers with
// Pulumi; this is for local stacks and tests.
func (s *Store) EnsureContainer(ctx context.Context, container string) (err error) {
	ctx, end := observe(ctx, "ensure_container", container, "")
	defer func() { end(err, telemetry.NoSize) }()
	_, err = s.c.CreateContainer(ctx, container, nil)
	if err == nil || bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		return nil
	}
	return translate(err)
}

// pingContainer is the container Ping asks about. It need not exist: "no such container" is an
// answer from the account, which is all a readiness check wants to know.
const pingContainer = "spine-readiness-probe"

// Ping reports whether the storage account answers and accepts the process's credentials (a
// container's properties are read: a call the data roles allow), for readiness checks. Errors are
// ErrUnavailable (or the SDK's authentication errors translated), never SDK text.
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.c.ServiceClient().NewContainerClient(pingContainer).GetProperties(ctx, nil)
	if err == nil || bloberror.HasCode(err, bloberror.ContainerNotFound) {
		return nil
	}
	return translate(err)
}

// PutCreateOnly writes data at container/name only if no blob exists there (If-None-Match: *).
// An existing blob yields ErrExists and is left untouched.
func (s *Store) PutCreateOnly(ctx context.Context, container, name string, data []byte, contentType string) (err error) {
	ctx, end := observe(ctx, "put", container, name)
	defer func() { end(err, int64(len(data))) }()
	etagAny := azcore.ETagAny
	_, err = s.c.UploadBuffer(ctx, container, name, data, &azblob.UploadBufferOptions{
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
func (s *Store) Get(ctx context.Context, container, name string) (data []byte, err error) {
	ctx, end := observe(ctx, "get", container, name)
	defer func() { end(err, int64(len(data))) }()
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

// observe starts a client span and a store operation for op on container/name; end records its
// outcome (ErrNotFound is notfound) and bytes.
func observe(ctx context.Context, op, container, name string) (context.Context, func(err error, bytes int64)) {
	tenant, _, _ := strings.Cut(name, "/")
	m := telemetry.Start(ctx, container, telemetry.StoreBlob, op, tenant)
	ctx, span := telemetry.Tracer().Start(ctx, "blob "+op, trace.WithSpanKind(trace.SpanKindClient))
	if span.IsRecording() {
		span.SetAttributes(attribute.String("az.storage.container", container), attribute.String("az.storage.blob", name))
	}
	return ctx, func(err error, bytes int64) {
		outcome := telemetry.OutcomeOf(err)
		switch {
		case errors.Is(err, ErrNotFound):
			outcome = telemetry.OutcomeNotFound
		case err != nil:
			span.SetStatus(codes.Error, "blob "+op+" failed")
		}
		span.End()
		if err != nil {
			bytes = telemetry.NoSize
		}
		m.EndWith(ctx, outcome, telemetry.NoSize, bytes)
	}
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
