package authz

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"spine/shared/functions"
	"spine/shared/secrets"
	"spine/shared/secrets/kvfake"
)

// AuthzKeyRotation writes a new signing key version when the newest one is older than the
// rotation age, and says so in one log line naming the new kid; a younger key is a quiet tick.
// The new key is published at once and signs only after the activation delay.
func TestKeyRotationTimer_RotatesAnOldKeyOnceThenQuiet(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Now().Add(-40 * 24 * time.Hour).Unix())
	kv := kvfake.NewTLSServer(t, kvfake.Options{Now: func() time.Time { return time.Unix(clock.Load(), 0) }})
	vault, err := secrets.Open(secrets.Config{VaultURL: kv.URL, CAFile: kv.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	ring, err := secrets.NewKeyRing(t.Context(), vault, secrets.KeyRingOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	old, err := ring.Current()
	if err != nil {
		t.Fatal(err)
	}
	clock.Store(time.Now().Unix())
	a := &API{connect: &connect{ring: ring, keyRotation: DefaultKeyRotation, log: slog.New(slog.DiscardHandler)}}

	res, err := a.rotateKey(context.Background(), &functions.Invocation{})
	if err != nil || res.Quiet || len(res.Logs) != 1 {
		t.Fatalf("rotation of a 40-day-old key: %+v, %v", res, err)
	}
	pub := ring.Published()
	if len(pub) != 2 || pub[0].ID == old.ID || pub[1].ID != old.ID || !strings.Contains(res.Logs[0], pub[0].ID) {
		t.Fatalf("published %v after rotating from %s; log %q", pub, old.ID, res.Logs[0])
	}
	if cur, _ := ring.Current(); cur.ID != old.ID {
		t.Fatalf("the new key signs before the activation delay: %s", cur.ID)
	}

	res, err = a.rotateKey(context.Background(), &functions.Invocation{})
	if err != nil || !res.Quiet || len(res.Logs) != 0 {
		t.Fatalf("a second tick with a fresh key: %+v, %v", res, err)
	}
	if len(ring.Published()) != 2 {
		t.Fatalf("a quiet tick changed the ring: %v", ring.Published())
	}
}
