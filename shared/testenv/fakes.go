package testenv

import (
	"context"
	"fmt"
	"sync"

	"spine/shared/tenancy"
)

// Directory is a tenant directory the test controls (the tenants service answers it in the app):
// a tenant is unknown until Set. Safe for concurrent use.
type Directory struct {
	mu sync.Mutex
	m  map[tenancy.TenantID]tenancy.Status
}

var _ tenancy.Directory = (*Directory)(nil)

// NewDirectory returns a directory in which ids are Active.
func NewDirectory(ids ...tenancy.TenantID) *Directory {
	d := &Directory{m: map[tenancy.TenantID]tenancy.Status{}}
	for _, id := range ids {
		d.m[id] = tenancy.StatusActive
	}
	return d
}

// TenantStatus implements tenancy.Directory.
func (d *Directory) TenantStatus(_ context.Context, id tenancy.TenantID) (tenancy.Status, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st, ok := d.m[id]
	if !ok {
		return "", fmt.Errorf("%w: %s", tenancy.ErrTenantNotFound, id)
	}
	return st, nil
}

// Set gives id status st.
func (d *Directory) Set(id tenancy.TenantID, st tenancy.Status) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.m[id] = st
}
