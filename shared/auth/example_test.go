package auth_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"spine/shared/auth"
)

// The local stack: a dev key on disk, a Verifier trusting its jwks.json, and a minted token.
func Example() {
	dir, err := os.MkdirTemp("", "spine-auth-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	signer, err := auth.EnsureDevKey(dir)
	if err != nil {
		panic(err)
	}
	v, err := auth.NewVerifier(context.Background(), auth.Config{
		Issuer:   "http://localhost:7071/api",
		Audience: "spine",
		JWKSFile: filepath.Join(dir, auth.DevJWKSFile),
	})
	if err != nil {
		panic(err)
	}
	defer v.Close()

	token, err := signer.Mint(auth.TokenClaims{
		Issuer: "http://localhost:7071/api", Audience: "spine", Subject: "user-1",
		TenantID: "0190b6f5-9a3c-7c1e-8d3f-3b1a2c4d5e6f", Scopes: []string{"tenant.read"},
	}, 15*time.Minute)
	if err != nil {
		panic(err)
	}
	p, err := v.Verify(context.Background(), token)
	if err != nil {
		panic(err)
	}
	fmt.Println(p.Subject, p.TenantID, p.HasScope("tenant.read"), p.HasScope("tenant.manage"))
	// Output: user-1 0190b6f5-9a3c-7c1e-8d3f-3b1a2c4d5e6f true false
}
