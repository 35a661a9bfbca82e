package identity

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Passwords are set when an invitation is accepted and verified by the authorization server's
// sign-in (Service.Authenticate). Only the argon2id hash is stored, as a PHC string:
//
//	$argon2id$v=19$m=65536,t=3,p=4$<salt, base64 without padding>$<hash, base64 without padding>
//
// The parameters are RFC 9106's second recommended option (§4: "if much less memory is
// available"): 64 MiB, 3 passes, 4 lanes, a 16-byte salt and a 32-byte tag, also within OWASP's
// Password Storage Cheat Sheet's argon2id range. Verification reads the parameters from the
// stored string, so they can be raised later without invalidating existing hashes. The password
// and its hash are never logged, returned or put in an event.
const (
	argonMemoryKiB = 64 * 1024
	argonTime      = 3
	argonThreads   = 4
	argonSaltLen   = 16
	argonKeyLen    = 32
)

// Password length bounds, in characters: at least MinPasswordLength (NIST SP 800-63B asks 8; we
// ask 12), at most MaxPasswordLength (a bound on the hash's input, not a policy).
const (
	MinPasswordLength = 12
	MaxPasswordLength = 256
)

// checkPassword applies the password rules: length only, every character allowed (NIST SP
// 800-63B: no composition rules), valid UTF-8.
func checkPassword(pw string) error {
	if !utf8.ValidString(pw) {
		return fmt.Errorf("%w: the password must be valid UTF-8", ErrWeakPassword)
	}
	n := utf8.RuneCountInString(pw)
	if n < MinPasswordLength {
		return fmt.Errorf("%w: the password must be at least %d characters long", ErrWeakPassword, MinPasswordLength)
	}
	if n > MaxPasswordLength {
		return fmt.Errorf("%w: the password must be at most %d characters long", ErrWeakPassword, MaxPasswordLength)
	}
	return nil
}

// hashPassword returns the PHC string of pw's argon2id hash with a fresh salt.
// argonSlots bounds the argon2id computations that run at once in the process. Each holds
// argonMemoryKiB (64 MiB) for about half a second of CPU, so without a bound N concurrent
// acceptances (of one valid token, by anyone who has it) hold N × 64 MiB at once: 40 took the
// handler from 330 MB to 1.4 GB. With it, the process never holds more than slots × 64 MiB for
// passwords; the others wait their turn (or stop waiting when their request ends).
var argonSlots = make(chan struct{}, argonConcurrency())

func argonConcurrency() int { return min(max(runtime.GOMAXPROCS(0), 1), 4) }

// argonHeld and argonPeak count the slots held and the most ever held at once (for the test
// that proves the bound).
var argonHeld, argonPeak atomic.Int64

// withArgonSlot runs fn, which hashes or verifies a password, holding one of argonSlots.
func withArgonSlot(ctx context.Context, fn func() error) error {
	select {
	case argonSlots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-argonSlots }()
	n := argonHeld.Add(1)
	defer argonHeld.Add(-1)
	for {
		if p := argonPeak.Load(); n <= p || argonPeak.CompareAndSwap(p, n) {
			break
		}
	}
	return fn()
}

func hashPassword(pw string) string {
	salt := make([]byte, argonSaltLen)
	_, _ = rand.Read(salt)
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemoryKiB, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemoryKiB, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// verifyPassword reports whether pw matches the PHC string encoded (constant-time compare). A
// string it cannot read is a mismatch, never a panic.
func verifyPassword(encoded, pw string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return false
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || t == 0 || p == 0 || m > 1<<22 || t > 64 {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	key, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(key) == 0 || len(key) > 128 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1
}
