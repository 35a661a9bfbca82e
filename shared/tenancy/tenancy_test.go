package tenancy

import (
	"context"
	"errors"
	"testing"
)

func TestParseTenantID_OnlyCanonicalUUIDs(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"01936a52-8f7e-7c3a-9d4e-000000000001", true},
		{"01936A52-8F7E-7C3A-9D4E-000000000001", true},
		{"00000000-0000-0000-0000-000000000000", false},
		{"01936a528f7e7c3a9d4e000000000001", false},
		{"{01936a52-8f7e-7c3a-9d4e-000000000001}", false},
		{"urn:uuid:01936a52-8f7e-7c3a-9d4e-000000000001", false},
		{"", false},
		{"not-a-tenant", false},
	} {
		id, err := ParseTenantID(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseTenantID(%q) err = %v", tc.in, err)
		}
		if tc.ok && id.String() != "01936a52-8f7e-7c3a-9d4e-000000000001" {
			t.Errorf("ParseTenantID(%q) = %s, want the lowercase form", tc.in, id)
		}
	}
	if a, b := NewTenantID(), NewTenantID(); a.IsZero() || a == b {
		t.Fatal("NewTenantID returned the zero id or repeated itself")
	}
}

type dir map[TenantID]Status

func (d dir) TenantStatus(_ context.Context, id TenantID) (Status, error) {
	st, ok := d[id]
	if !ok {
		return "", ErrTenantNotFound
	}
	return st, nil
}

func TestFence_RefusesSuspendedAndDecommissioned(t *testing.T) {
	d := dir{}
	f := Fence{Dir: d}
	for st, refused := range map[Status]bool{
		StatusProvisioning: false, StatusActive: false, StatusSuspended: true, StatusDecommissioned: true,
	} {
		id := NewTenantID()
		d[id] = st
		err := f.CheckWrite(context.Background(), id)
		if refused != errors.Is(err, ErrTenantSuspended) {
			t.Errorf("%s: err = %v", st, err)
		}
	}
	if err := f.CheckWrite(context.Background(), NewTenantID()); !errors.Is(err, ErrTenantNotFound) {
		t.Errorf("unknown tenant: %v", err)
	}
}
