package auth

import "errors"

// Errors returned by [Verifier.Verify] (and the middleware). Every error for a token that was presented
// but rejected matches [ErrInvalidToken] under errors.Is, and additionally matches at most one of the
// more specific sentinels below it. A missing token matches [ErrMissingToken] only. Error text never
// contains the token.
var (
	// ErrMissingToken means no bearer token was presented.
	ErrMissingToken = errors.New("auth: no bearer token")
	// ErrInvalidToken is matched by every rejection of a presented token.
	ErrInvalidToken = errors.New("auth: invalid bearer token")

	// ErrMalformedToken: not a compact JWS, undecodable segments, bad JSON, oversized, or a header
	// this package refuses (crit, unexpected typ).
	ErrMalformedToken = errors.New("malformed token")
	// ErrUnsupportedAlgorithm: the header's alg is not RS256 or ES256 (none, HS256, ...).
	ErrUnsupportedAlgorithm = errors.New("unsupported signing algorithm")
	// ErrUnknownKey: the header has no kid, or the kid is not in the key set (after any permitted
	// refresh).
	ErrUnknownKey = errors.New("unknown signing key")
	// ErrKeyMismatch: the key named by kid cannot be used with the header's alg (wrong key type or
	// curve, a JWK "alg" that differs, a JWK "use" other than sig, an RSA key shorter than 2048 bits).
	ErrKeyMismatch = errors.New("signing key does not match algorithm")
	// ErrBadSignature: the signature does not verify.
	ErrBadSignature = errors.New("signature does not verify")
	// ErrExpired: exp (plus the clock skew) has passed.
	ErrExpired = errors.New("token expired")
	// ErrNotYetValid: nbf or iat lies in the future (beyond the clock skew).
	ErrNotYetValid = errors.New("token not yet valid")
	// ErrWrongIssuer: iss is not the configured issuer.
	ErrWrongIssuer = errors.New("token issuer not accepted")
	// ErrWrongAudience: aud does not contain the configured audience.
	ErrWrongAudience = errors.New("token audience not accepted")
	// ErrInvalidClaims: a required claim is missing or a claim is inconsistent (no sub, no exp, no
	// iss/aud, neither tenant_id nor platform_admin=true).
	ErrInvalidClaims = errors.New("invalid token claims")

	// ErrInvalidConfig is wrapped by every error from [Config.Validate].
	ErrInvalidConfig = errors.New("auth: invalid configuration")
)

// tokenError is a rejection of a presented token: it matches ErrInvalidToken and kind.
type tokenError struct {
	kind   error
	detail string // never contains the token
}

func (e *tokenError) Error() string {
	s := ErrInvalidToken.Error() + ": " + e.kind.Error()
	if e.detail != "" {
		s += ": " + e.detail
	}
	return s
}

func (e *tokenError) Unwrap() []error { return []error{ErrInvalidToken, e.kind} }

// invalid returns an error matching ErrInvalidToken and kind. detail must never contain the token.
func invalid(kind error, detail string) error {
	return &tokenError{kind: kind, detail: detail}
}
