package blob

import (
	"context"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"

	"spine/shared/telemetry"
)

// List returns the names of container's blobs that start with prefix, in name order (the
// service's listing order). A container that does not exist lists nothing.
func (s *Store) List(ctx context.Context, container, prefix string) (names []string, err error) {
	ctx, end := observe(ctx, "list", container, prefix)
	defer func() { end(err, telemetry.NoSize) }()
	pager := s.c.NewListBlobsFlatPager(container, &azblob.ListBlobsFlatOptions{Prefix: &prefix})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			if bloberror.HasCode(err, bloberror.ContainerNotFound) {
				return nil, nil
			}
			return nil, translate(err)
		}
		for _, b := range page.Segment.BlobItems {
			if b.Name != nil {
				names = append(names, *b.Name)
			}
		}
	}
	return names, nil
}
