package notifications

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"spine/shared/egress"
)

// Standard Webhooks (https://www.standardwebhooks.com): the secret is "whsec_" + base64 of 24
// random bytes; a delivery carries webhook-id (the notification id, the same on every retry),
// webhook-timestamp (Unix seconds of the attempt) and webhook-signature "v1,<base64 HMAC-SHA256 of
// id.timestamp.body keyed with the secret's bytes>".
const secretPrefix = "whsec_"

// newSecret returns a fresh webhook signing secret.
func newSecret() (string, error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return secretPrefix + base64.StdEncoding.EncodeToString(b[:]), nil
}

// sign returns the webhook-signature header value for id, timestamp and body under secret.
func sign(secret, id string, ts int64, body []byte) (string, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, secretPrefix))
	if err != nil {
		return "", errors.New("notifications: the webhook secret is not whsec_<base64>")
	}
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%d.", id, ts)
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil)), nil
}

// MaxURLLength bounds a webhook endpoint's URL (the column's CHECK).
const MaxURLLength = 2048

// checkURL validates a webhook endpoint's URL when it is set (at most MaxURLLength bytes;
// shared/egress: https only, http to loopback only when allowed, no credentials, no private,
// link-local or metadata address). It runs before anything is written, Key Vault included.
func checkURL(raw string, allowLoopback bool) error {
	if len(raw) > MaxURLLength {
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidURL, MaxURLLength)
	}
	if _, err := egress.CheckURL(raw, allowLoopback); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidURL, err)
	}
	return nil
}

// deliveryTimeout bounds one webhook delivery, connection to response.
const deliveryTimeout = egress.DefaultTimeout

// statusClass classifies an HTTP answer: "" for 2xx, else http-3xx, http-4xx or http-5xx.
func statusClass(code int) string {
	switch {
	case code >= 200 && code < 300:
		return ""
	case code < 400:
		return "http-3xx"
	case code < 500:
		return "http-4xx"
	}
	return "http-5xx"
}
