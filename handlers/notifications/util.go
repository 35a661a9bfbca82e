package notifications

import (
	"encoding/base64"
	"encoding/hex"
	"strconv"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// hexToBase64 re-encodes a hex digest as base64 (the Digest header's form).
func hexToBase64(h string) string {
	b, err := hex.DecodeString(h)
	if err != nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(b)
}
