package tenants

import (
	"context"
	"encoding/json"
	"errors"
	"slices"

	"spine/shared/blob"
	"spine/shared/entitlements"
)

// StepRunner performs one named provisioning step. Run must be idempotent: a step can run more
// than once (a retry after a crash, two concurrent provision calls). A failure is reported to the
// client by the stable code of Code(err), never by the error's text.
type StepRunner interface {
	Name() string
	Run(ctx context.Context, t Tenant) error
}

// codedError is a step failure with a stable code.
type codedError struct{ code string }

func (e codedError) Error() string { return e.code }

// stepCode returns the stable code of a step's error.
func stepCode(err error) string {
	var ce codedError
	if errors.As(err, &ce) {
		return ce.code
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "step-timeout"
	}
	return "step-error"
}

// EditionStep checks the tenant's edition against the editions on sale: billing's edition catalog
// (Catalog, entitlements.Source.Edition) when billing runs in the binary, otherwise the
// SPINE_TENANT_EDITIONS setting (Editions). A tenant registered with an unknown edition fails here
// (unknown-edition); PATCH its editionCode and provision again. A catalog that cannot answer fails
// the step as catalog-unavailable, which a later provision retries.
type EditionStep struct {
	Catalog  entitlements.Source
	Editions []string
}

// Name implements StepRunner.
func (EditionStep) Name() string { return "edition" }

// Run implements StepRunner.
func (s EditionStep) Run(ctx context.Context, t Tenant) error {
	if s.Catalog == nil {
		if !slices.Contains(s.Editions, string(t.EditionCode)) {
			return codedError{"unknown-edition"}
		}
		return nil
	}
	_, err := s.Catalog.Edition(ctx, string(t.EditionCode))
	switch {
	case err == nil:
		return nil
	case errors.Is(err, entitlements.ErrUnknownEdition):
		return codedError{"unknown-edition"}
	default:
		return codedError{"catalog-unavailable"}
	}
}

// BlobWriter is the part of blob storage the storage step needs.
type BlobWriter interface {
	PutCreateOnly(ctx context.Context, container, name string, data []byte, contentType string) error
}

// ManifestContainer holds each tenant's provisioning manifest.
const ManifestContainer = "tenants"

// StorageStep writes the tenant's manifest blob (create-only) under the tenant's own prefix, which
// proves the storage account is reachable and claims the prefix. An existing manifest counts as
// success, so the step is idempotent.
type StorageStep struct{ Blobs BlobWriter }

// Name implements StepRunner.
func (StorageStep) Name() string { return "storage" }

// Run implements StepRunner.
func (s StorageStep) Run(ctx context.Context, t Tenant) error {
	body, err := json.Marshal(map[string]any{
		"tenantId": t.ID.String(), "slug": t.Slug, "createdAt": t.CreatedAt,
	})
	if err != nil {
		return err
	}
	name := blob.Name(t.ID.String(), "manifest", t.CreatedAt, t.ID.String(), "json")
	err = s.Blobs.PutCreateOnly(ctx, ManifestContainer, name, body, "application/json")
	if err == nil || errors.Is(err, blob.ErrExists) {
		return nil
	}
	return codedError{"storage-unavailable"}
}
