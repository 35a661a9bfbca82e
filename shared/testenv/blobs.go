package testenv

import (
	"context"
	"testing"

	"spine/shared/blob"
)

// Blobs is a blob store on the stack's Azurite (SPINE_STORAGE_CONNECTION_STRING) with containers
// created.
func Blobs(tb testing.TB, containers ...string) *blob.Store {
	tb.Helper()
	conn, err := Require("SPINE_STORAGE_CONNECTION_STRING")
	if err != nil {
		tb.Fatal(err)
	}
	bs, err := blob.Open(conn, "")
	if err != nil {
		tb.Fatal(err)
	}
	for _, c := range containers {
		if err := bs.EnsureContainer(context.Background(), c); err != nil {
			tb.Fatal(err)
		}
	}
	return bs
}
