package notifications

import (
	"context"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

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
