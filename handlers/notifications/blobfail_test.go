package notifications

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"spine/shared/blob"
	"spine/shared/sqlstore"
)

// failingBlobs is the real store, except that its failOn-th streamed write fails as storage
// being unavailable; it records what it wrote.
type failingBlobs struct {
	Blobs
	mu      sync.Mutex
	calls   int
	failOn  int
	written []string
}

func (f *failingBlobs) PutStreamCreateOnly(ctx context.Context, container, name string, r io.Reader, ct string) (blob.Written, error) {
	f.mu.Lock()
	f.calls++
	fail := f.calls == f.failOn
	f.mu.Unlock()
	if fail {
		return blob.Written{}, blob.ErrUnavailable
	}
	w, err := f.Blobs.PutStreamCreateOnly(ctx, container, name, r, ct)
	if err == nil {
		f.mu.Lock()
		f.written = append(f.written, container+"|"+name)
		f.mu.Unlock()
	}
	return w, err
}

// When a blob write fails, nothing is acknowledged: no row, no event, and the blobs already
// written for the notification are deleted again.
func TestSend_BlobWriteFails_NothingAcknowledged(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	fb := &failingBlobs{Blobs: h.blobs, failOn: 2}
	svc := NewService(h.svc.store, fb, h.vault, nil, h.dir, nil, ServiceConfig{Now: h.clock.now}, nil)
	_, err := svc.Send(context.Background(), f.id, SendInput{Channel: ChannelInApp, Recipient: "0193a7b0-0000-7000-8000-00000000000a",
		Body: strings.Repeat("b", 9<<10), Attachments: []AttachmentInput{{Name: "a.txt", Data: []byte("x")}}})
	if !errors.Is(err, ErrUnavailable) || MapError(err).Status != 503 {
		t.Fatalf("err %v", err)
	}
	if len(fb.written) != 1 {
		t.Fatalf("written %v", fb.written)
	}
	container, name, _ := strings.Cut(fb.written[0], "|")
	if _, err := h.blobs.Get(context.Background(), container, name); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("the body blob of the refused notification is still there: %v", err)
	}
	if ns, err := h.svc.store.Notifications(context.Background(), sqlstore.TenantScope(f.id), f.id.String(), ListFilter{}, "", 10); err != nil || len(ns) != 0 {
		t.Errorf("rows %d %v", len(ns), err)
	}
	if types := h.outboxTypes(f.id); len(types) != 0 {
		t.Errorf("events %v", types)
	}
}
