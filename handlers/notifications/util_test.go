package notifications

import (
	"encoding/json"
	"testing"
)

func decodeInto(t *testing.T, raw []byte, v any) error {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Errorf("decode %s: %v", raw, err)
		return err
	}
	return nil
}
