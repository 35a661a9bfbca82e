// Package auth validates OAuth 2.0 bearer access tokens (JWTs) against the authorization server's
// signing keys, carries the caller's [Principal] in the request context, and checks scopes at the
// HTTP edge.
//
// A [Verifier] accepts only RS256 and ES256 tokens whose header names a key id (kid) found in its
// key set, whose signature verifies with that key, and whose claims pass the checks described on
// [Verifier.Verify]. The key set comes from one of (see [Config]): the authorization server's key
// ring in process ([KeySource], when it runs in the same binary: a rotation is seen at once), a
// JWKS file (tests and the dev key), a JWKS URL, or discovery (the issuer's
// /.well-known/openid-configuration names the JWKS; its issuer must equal the configured one). A
// fetched set is cached, refreshed hourly and on an unknown kid (at most once a minute), and may be
// unreachable at start: tokens are then refused (401) until it loads. Successfully verified tokens
// are remembered in a bounded cache keyed by the SHA-256 of the raw token, so a repeated request
// skips the signature check until the token expires.
//
// Revocation is bounded by the token's lifetime: the API never asks the authorization server about
// a token it holds (no introspection per request), so a revoked access token is accepted until its
// exp (10 minutes by default, 15 at most); refresh tokens are checked at the authorization server's
// store on every use, so a revoked or reused one mints nothing more.
//
// [Middleware] and [RequireScope] wire a Verifier into echo; failures are returned as
// *problem.Problem errors (401 unauthorized / invalid-token, 403 insufficient-scope) carrying the
// RFC 6750 WWW-Authenticate challenge, which the application's problem error handler renders.
//
// [EnsureDevKey], [LoadDevSigner] and [DevSigner.Mint] provide an ES256 signing key and tokens for
// tests; the local stack's tokens come from the authorization server (`handler token`).
package auth
