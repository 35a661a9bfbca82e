package azure

import "github.com/pulumi/pulumi/sdk/v3/go/pulumi"

// PrivateKeyArgs are the inputs of tls:index/privateKey:PrivateKey.
type PrivateKeyArgs struct {
	// Algorithm is "RSA", "ECDSA" or "ED25519".
	Algorithm string
	RSABits   int
}

// PrivateKey is a generated private key. Its PEM encodings are secret outputs,
// so they are encrypted in the stack's state.
type PrivateKey struct {
	pulumi.CustomResourceState
	PrivateKeyPemPkcs8 pulumi.StringOutput `pulumi:"privateKeyPemPkcs8"`
	PublicKeyPem       pulumi.StringOutput `pulumi:"publicKeyPem"`
}

// NewPrivateKey registers a generated private key (tls provider).
func NewPrivateKey(ctx *pulumi.Context, name string, a PrivateKeyArgs, opts ...pulumi.ResourceOption) (*PrivateKey, error) {
	r := &PrivateKey{}
	p := obj{}.str("algorithm", a.Algorithm).num("rsaBits", a.RSABits)
	opts = append(opts, pulumi.AdditionalSecretOutputs([]string{"privateKeyOpenssh", "privateKeyPem", "privateKeyPemPkcs8"}))
	return r, register(ctx, "tls:index/privateKey:PrivateKey", name, p, r, opts)
}
