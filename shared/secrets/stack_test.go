package secrets_test

import (
	"os"
	"testing"

	"spine/shared/secrets"
)

// The local stack's Key Vault fake runs as a process (handler keyvault-fake, started by
// scripts/stack.sh); this reaches it with exactly the settings the app gets from .stack/<name>/env.
func TestStackKeyVault_KeyRingRotatesThroughTheStacksFake(t *testing.T) {
	url, ca := os.Getenv("SPINE_KEYVAULT_URL"), os.Getenv("SPINE_KEYVAULT_CA_FILE")
	if url == "" {
		t.Skip("SPINE_KEYVAULT_URL is not set: run with the local stack's env (scripts/stack.sh up --name test --fast; . .stack/test/env)")
	}
	open := func() *secrets.Vault {
		v, err := secrets.Open(secrets.Config{VaultURL: url, CAFile: ca})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	opts := secrets.KeyRingOptions{Name: "stack-test-signing-key", Logger: quiet(), Activation: -1}
	a, err := secrets.NewKeyRing(ctx(t), open(), opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := secrets.NewKeyRing(ctx(t), open(), opts)
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := a.Rotate(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Refresh(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if got := current(t, b); got.ID != rotated.ID {
		t.Fatalf("the second instance signs with %v, want %v", got, rotated)
	}
	if err := verify(sign(t, rotated), b.Published()); err != nil {
		t.Fatal(err)
	}
}
