package blob_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"spine/shared/blob"
	"spine/shared/testenv"
)

const container = "blob-kit-test"

func openStore(t *testing.T) *blob.Store {
	t.Helper()
	conn, err := testenv.Require("SPINE_STORAGE_CONNECTION_STRING")
	if err != nil {
		t.Fatal(err)
	}
	s, err := blob.Open(conn, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureContainer(context.Background(), container); err != nil {
		t.Fatal(err)
	}
	return s
}

func uniqueName(t *testing.T, suffix string) string {
	return blob.Name("00000000-0000-4000-8000-"+time.Now().Format("150405.000000")[:6]+"000000", "kit", time.Now(), strings.ReplaceAll(t.Name(), "/", "-")+time.Now().Format("150405.000000000"), suffix)
}

// TestPutStreamCreateOnly_LargeStreamRoundTripsWithItsHash streams 9 MiB (three blocks) and
// reads back the same bytes, size and SHA-256.
func TestPutStreamCreateOnly_LargeStreamRoundTripsWithItsHash(t *testing.T) {
	s, ctx := openStore(t), context.Background()
	data := make([]byte, 9<<20+123)
	_, _ = rand.Read(data)
	name := uniqueName(t, "bin")
	w, err := s.PutStreamCreateOnly(ctx, container, name, bytes.NewReader(data), "application/octet-stream")
	if err != nil {
		t.Fatal(err)
	}
	if w.Size != int64(len(data)) || w.SHA256 != sha256.Sum256(data) {
		t.Fatalf("written %d bytes, hash %x; want %d, %x", w.Size, w.SHA256, len(data), sha256.Sum256(data))
	}
	rc, p, err := s.Open(ctx, container, name)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) || p.Size != int64(len(data)) || p.ContentType != "application/octet-stream" {
		t.Fatalf("read %d bytes (equal %v), properties %+v", len(got), bytes.Equal(got, data), p)
	}
	// Create-only: a second upload under the same name is refused and leaves the first intact.
	if _, err := s.PutStreamCreateOnly(ctx, container, name, strings.NewReader("other"), "text/plain"); !errors.Is(err, blob.ErrExists) {
		t.Fatalf("second upload: %v, want ErrExists", err)
	}
	p2, err := s.Properties(ctx, container, name)
	if err != nil || p2.Size != int64(len(data)) {
		t.Fatalf("after the refused overwrite: %+v, %v", p2, err)
	}
}

// TestPutStreamCreateOnly_EmptyStream writes a zero-byte blob.
func TestPutStreamCreateOnly_EmptyStream(t *testing.T) {
	s, ctx := openStore(t), context.Background()
	w, err := s.PutStreamCreateOnly(ctx, container, uniqueName(t, "txt"), strings.NewReader(""), "text/plain")
	if err != nil || w.Size != 0 || w.SHA256 != sha256.Sum256(nil) {
		t.Fatalf("%+v, %v", w, err)
	}
}

type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n > 0 {
		k := min(len(p), f.n)
		f.n -= k
		return k, nil
	}
	return 0, errors.New("producer failed")
}

// TestPutStreamCreateOnly_SourceFailureCommitsNothing: a producer failing mid-stream leaves no blob.
func TestPutStreamCreateOnly_SourceFailureCommitsNothing(t *testing.T) {
	s, ctx := openStore(t), context.Background()
	name := uniqueName(t, "bin")
	_, err := s.PutStreamCreateOnly(ctx, container, name, &failingReader{n: 5 << 20}, "application/octet-stream")
	if err == nil || errors.Is(err, blob.ErrUnavailable) {
		t.Fatalf("err = %v, want the producer's failure", err)
	}
	if _, err := s.Properties(ctx, container, name); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("after a failed upload: %v, want ErrNotFound", err)
	}
}

// TestReadURL_OpensExactlyThatBlobReadOnly: the SAS URL reads its blob, cannot write it, and does
// not open another blob's name.
func TestReadURL_OpensExactlyThatBlobReadOnly(t *testing.T) {
	s, ctx := openStore(t), context.Background()
	a, b := uniqueName(t, "a.txt"), uniqueName(t, "b.txt")
	for _, n := range []string{a, b} {
		if err := s.PutCreateOnly(ctx, container, n, []byte("content of "+n), "text/plain"); err != nil {
			t.Fatal(err)
		}
	}
	u, err := s.ReadURL(ctx, container, a, blob.SASOptions{TTL: time.Minute, ContentDisposition: `attachment; filename="a.txt"`})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "content of "+a || resp.Header.Get("Content-Disposition") != `attachment; filename="a.txt"` {
		t.Fatalf("GET SAS: %d %q %q", resp.StatusCode, body, resp.Header.Get("Content-Disposition"))
	}
	// The same signature on the other blob's path.
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(pu.Path, a) {
		t.Fatalf("the SAS URL's path %q does not name %s", pu.Path, a)
	}
	pu.Path, pu.RawPath = strings.Replace(pu.Path, a, b, 1), ""
	resp, err = http.Get(pu.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("SAS of %s on %s: %d, want 403", a, b, resp.StatusCode)
	}
	// Read-only: a PUT with the URL is refused.
	req, _ := http.NewRequest(http.MethodPut, u, strings.NewReader("overwrite"))
	req.Header.Set("x-ms-blob-type", "BlockBlob")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("PUT with a read SAS: %d, want 403", resp.StatusCode)
	}
}

// TestSetTierDeleteProperties: tiering is visible in the properties; Delete is idempotent.
func TestSetTierDeleteProperties(t *testing.T) {
	s, ctx := openStore(t), context.Background()
	n := uniqueName(t, "txt")
	if err := s.PutCreateOnly(ctx, container, n, []byte("x"), "text/plain"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetTier(ctx, container, n, blob.TierCool); err != nil {
		t.Fatal(err)
	}
	p, err := s.Properties(ctx, container, n)
	if err != nil || p.AccessTier != string(blob.TierCool) {
		t.Fatalf("%+v %v", p, err)
	}
	if err := s.SetTier(ctx, container, n, "Warm"); err == nil {
		t.Fatal("SetTier accepted an unknown tier")
	}
	for range 2 {
		if err := s.Delete(ctx, container, n); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Properties(ctx, container, n); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if err := s.SetTier(ctx, container, n, blob.TierHot); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("SetTier of a missing blob: %v", err)
	}
}
