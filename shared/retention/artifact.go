package retention

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"spine/shared/blob"
)

// ArtifactBlobs is the part of *blob.Store PutArtifact uses.
type ArtifactBlobs interface {
	PutCreateOnly(ctx context.Context, container, name string, data []byte, contentType string) error
	Get(ctx context.Context, container, name string) ([]byte, error)
}

var _ ArtifactBlobs = (*blob.Store)(nil)

// PutArtifact is Export's write for a target that builds its artifact in memory: data goes to
// container/name create-only; when the blob exists (a rerun after a crash between the write and
// the ledger), same decides whether its bytes are what this write would have written — yes: the
// existing blob is the artifact; no: ErrArtifactMismatch, and the range is left as it is. The
// answer carries the SHA-256 and size of the bytes in the blob.
func PutArtifact(ctx context.Context, b ArtifactBlobs, container, name string, data []byte, contentType string, same func(existing []byte) bool) (*Artifact, error) {
	err := b.PutCreateOnly(ctx, container, name, data, contentType)
	if err == nil {
		return ArtifactOf(container, name, data), nil
	}
	if !errors.Is(err, blob.ErrExists) {
		return nil, err
	}
	existing, err := b.Get(ctx, container, name)
	if err != nil {
		return nil, err
	}
	if !same(existing) {
		return nil, fmt.Errorf("%w: %s/%s", ErrArtifactMismatch, container, name)
	}
	return ArtifactOf(container, name, existing), nil
}

// ArtifactOf describes data stored as container/name: its SHA-256 and size.
func ArtifactOf(container, name string, data []byte) *Artifact {
	sum := sha256.Sum256(data)
	return &Artifact{Container: container, Name: name, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data))}
}
