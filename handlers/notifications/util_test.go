package notifications

import (
	"errors"

	"encoding/json"
	"spine/shared/sqlstore"
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

func errorsIs(err, target error) bool { return errors.Is(err, target) }

func tenantScope(f tenantFixture) sqlstore.Scope { return sqlstore.TenantScope(f.id) }
