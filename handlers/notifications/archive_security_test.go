package notifications

import (
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	"spine/shared/blob"
)

// countingBlobs counts the blobs the service opens (reads of archive blobs).
type countingBlobs struct {
	Blobs
	opens atomic.Int64
}

func (c *countingBlobs) Open(ctx context.Context, container, name string) (io.ReadCloser, blob.Properties, error) {
	c.opens.Add(1)
	return c.Blobs.Open(ctx, container, name)
}

// A GET of an id that was never archived, stamped inside a month the tenant has archived, reads
// at most the blob whose range holds the id's time — not every blob of the month (which made any
// 404 cost a month of the tenant's archive); an archived id in the same month is still found.
func TestArchive_GetUnknownIDInArchivedMonth_ReadsOnlyTheBlobsNearItsTime(t *testing.T) {
	h := newHarness(t)
	a := h.tenant()
	month := monthOf(time.Now().Add(-200 * 24 * time.Hour))
	ats := make([]time.Time, 28)
	for d := range ats {
		ats[d] = month.Add(time.Duration(d)*24*time.Hour + 12*time.Hour)
	}
	ids := seedOld(t, h.rt, a.id, ats)
	rig := newArchiveRig(t, h, time.Now, 4, a.id)
	rig.runUntilQuiet(rig.engine)
	if names := archiveBlobs(t, h.blobs, a.id); len(names) != 7 {
		t.Fatalf("archive blobs %v, want 7 ranges of 4", names)
	}
	cb := &countingBlobs{Blobs: h.svc.blobs}
	h.svc.blobs = cb

	unknown := uuidV7At(month.Add(10*24*time.Hour + 12*time.Hour + 30*time.Minute))
	if r := h.do("GET", "/api/notifications/"+unknown, a.reader, nil); r.Code != http.StatusNotFound {
		t.Fatalf("unknown id: %d %s, want 404", r.Code, r.Body)
	}
	if n := cb.opens.Load(); n > 1 {
		t.Errorf("a GET of an unknown id read %d archive blobs of the month, want at most the one whose range holds its time", n)
	}
	cb.opens.Store(0)
	if got := h.get(a, ids[13]); !got.Archived || got.ID != ids[13] {
		t.Fatalf("archived id %s: %+v", ids[13], got)
	}
	if n := cb.opens.Load(); n != 1 {
		t.Errorf("an archived id read %d blobs, want 1", n)
	}
}

// A damaged archive blob (replaced by bytes that are not gzip) answers a stable problem, 500
// archive-unreadable, never a driver's text.
func TestArchive_GetFromADamagedArchiveBlob_500ArchiveUnreadable(t *testing.T) {
	h := newHarness(t)
	a := h.tenant()
	month := monthOf(time.Now().Add(-200 * 24 * time.Hour))
	ids := seedOld(t, h.rt, a.id, []time.Time{month.Add(36 * time.Hour), month.Add(60 * time.Hour)})
	rig := newArchiveRig(t, h, time.Now, 10, a.id)
	rig.runUntilQuiet(rig.engine)
	names := archiveBlobs(t, h.blobs, a.id)
	if len(names) != 1 {
		t.Fatalf("archive blobs %v, want 1", names)
	}
	az, err := azblob.NewClientFromConnectionString(os.Getenv("SPINE_STORAGE_CONNECTION_STRING"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := az.DeleteBlob(t.Context(), ArchiveContainer, names[0], nil); err != nil {
		t.Fatal(err)
	}
	if err := h.blobs.PutCreateOnly(t.Context(), ArchiveContainer, names[0], []byte("not gzip"), "application/gzip"); err != nil {
		t.Fatal(err)
	}
	r := h.do("GET", "/api/notifications/"+ids[0], a.reader, nil)
	if r.Code != http.StatusInternalServerError || !strings.Contains(string(r.Body), `"code":"archive-unreadable"`) ||
		strings.Contains(string(r.Body), "gzip") {
		t.Fatalf("GET from a damaged archive: %d %s", r.Code, r.Body)
	}
}
