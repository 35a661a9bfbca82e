// Package auth validates OAuth 2.0 bearer access tokens (JWTs) against a JSON Web Key Set, carries the
// caller's [Principal] in the request context, and checks scopes at the HTTP edge.
//
// A [Verifier] accepts only RS256 and ES256 tokens whose header names a key id (kid) found in the
// configured JWKS, whose signature verifies with that key, and whose claims pass the checks described
// on [Verifier.Verify]. Successfully verified tokens are remembered in a bounded cache keyed by the
// SHA-256 of the raw token, so a repeated request skips the signature check until the token expires.
//
// [Middleware] and [RequireScope] wire a Verifier into echo; failures are returned as
// *problem.Problem errors (401 unauthorized / invalid-token, 403 insufficient-scope) carrying the
// RFC 6750 WWW-Authenticate challenge, which the application's problem error handler renders.
//
// [EnsureDevKey], [LoadDevSigner] and [DevSigner.Mint] provide an ES256 signing key and tokens for the
// local stack and for tests; production tokens come from the authorization server.
package auth
