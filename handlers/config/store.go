package config

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"spine/shared/flags"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// Store is the config service's persistence on either engine: each method is written once, here,
// over its engine's statements (statements.go). The service's rules run inside Write's closure.
// Platform-level rows (flag and setting definitions, the generation) are read in any scope and
// written in the platform scope only; tenant rows name their tenant in every statement.
type Store struct {
	db *sqlstore.DB
	q  *statements
}

// NewStore returns the store over db (the runtime role's connection).
func NewStore(db *sqlstore.DB) *Store {
	q := &pgStatements
	if db.Dialect == sqlstore.SQLServer {
		q = &msStatements
	}
	return &Store{db: db, q: q}
}

// DB is the store's database.
func (s *Store) DB() *sqlstore.DB { return s.db }

// Tx is one transaction of the store; tenant is the tenant whose overrides and settings its
// tenant-level methods address (the zero TenantID in platform-only work).
type Tx struct {
	*sqlstore.Tx
	q      *statements
	tenant string
}

// Write runs fn in a transaction in scope sc working on tenant's rows; it commits when fn
// returns nil. fn may run more than once (serialization retries).
func (s *Store) Write(ctx context.Context, sc sqlstore.Scope, tenant tenancy.TenantID, fn func(*Tx) error) error {
	return s.db.InTx(ctx, sc, func(tx *sqlstore.Tx) error { return fn(s.bind(tx, tenant)) })
}

// Read is Write in a read-only transaction.
func (s *Store) Read(ctx context.Context, sc sqlstore.Scope, tenant tenancy.TenantID, fn func(*Tx) error) error {
	return s.db.InReadTx(ctx, sc, func(tx *sqlstore.Tx) error { return fn(s.bind(tx, tenant)) })
}

func (s *Store) bind(tx *sqlstore.Tx, tenant tenancy.TenantID) *Tx {
	t := ""
	if !tenant.IsZero() {
		t = tenant.String()
	}
	return &Tx{Tx: tx, q: s.q, tenant: t}
}

// ---- flag definitions (platform-level) ----

// Definitions returns every flag definition, by key in byte order.
func (tx *Tx) Definitions(ctx context.Context) ([]FlagDefinition, error) {
	rows, err := tx.QueryContext(ctx, tx.q.definitions)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []FlagDefinition{}
	for rows.Next() {
		d, err := scanDefinition(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Definition returns the flag's definition, or ErrFlagNotFound.
func (tx *Tx) Definition(ctx context.Context, key string) (FlagDefinition, error) {
	return scanDefinition(tx.QueryRowContext(ctx, tx.q.definition, key))
}

// LockDefinition is Definition, locking the row until the transaction ends.
func (tx *Tx) LockDefinition(ctx context.Context, key string) (FlagDefinition, error) {
	return scanDefinition(tx.QueryRowContext(ctx, tx.q.lockDefinition, key))
}

// InsertDefinition inserts a new definition (platform scope).
func (tx *Tx) InsertDefinition(ctx context.Context, d FlagDefinition) error {
	doc, err := json.Marshal(d.Definition)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, tx.q.insertDefinition, d.Key, string(d.Type), string(doc), d.TenantOverridable, d.Version, d.UpdatedAt.UTC(), d.UpdatedBy)
	return err
}

// UpdateDefinition replaces a definition (platform scope), or ErrFlagNotFound.
func (tx *Tx) UpdateDefinition(ctx context.Context, d FlagDefinition) error {
	doc, err := json.Marshal(d.Definition)
	if err != nil {
		return err
	}
	return tx.execOne(ctx, ErrFlagNotFound, tx.q.updateDefinition, d.Key, string(d.Type), string(doc), d.TenantOverridable, d.Version, d.UpdatedAt.UTC(), d.UpdatedBy)
}

// DeleteDefinition deletes a definition and (the foreign key's cascade) every tenant's override of
// it (platform scope), or ErrFlagNotFound.
func (tx *Tx) DeleteDefinition(ctx context.Context, key string) error {
	return tx.execOne(ctx, ErrFlagNotFound, tx.q.deleteDefinition, key)
}

// Generation returns the platform definitions' generation.
func (tx *Tx) Generation(ctx context.Context) (int64, error) {
	var g int64
	err := tx.QueryRowContext(ctx, tx.q.generation).Scan(&g)
	return g, err
}

// BumpGeneration adds one to the generation (platform scope) and returns the new one; every
// definition change calls it in its transaction.
func (tx *Tx) BumpGeneration(ctx context.Context) (int64, error) {
	var g int64
	err := tx.QueryRowContext(ctx, tx.q.bumpGeneration).Scan(&g)
	return g, err
}

type scanner interface{ Scan(...any) error }

func scanDefinition(r scanner) (FlagDefinition, error) {
	var d FlagDefinition
	var key, typ, doc string
	if err := r.Scan(&key, &typ, &doc, &d.TenantOverridable, &d.Version, &d.UpdatedAt, &d.UpdatedBy); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return d, ErrFlagNotFound
		}
		return d, err
	}
	if err := json.Unmarshal([]byte(doc), &d.Definition); err != nil {
		return d, fmt.Errorf("config: stored definition %q: %w", key, err)
	}
	d.Key, d.Type, d.UpdatedAt = key, flags.Type(typ), d.UpdatedAt.UTC()
	return d, nil
}

// ---- overrides (tenant-owned) ----

// Overrides returns the tenant's overrides, by key in byte order.
func (tx *Tx) Overrides(ctx context.Context) ([]FlagOverride, error) {
	rows, err := tx.QueryContext(ctx, tx.q.overrides, tx.tenant)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []FlagOverride{}
	for rows.Next() {
		o, err := scanOverride(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// LockOverride returns the tenant's override of key, locked, or ErrOverrideNotFound.
func (tx *Tx) LockOverride(ctx context.Context, key string) (FlagOverride, error) {
	return scanOverride(tx.QueryRowContext(ctx, tx.q.lockOverride, tx.tenant, key))
}

// InsertOverride inserts the tenant's override (a unique violation when it has one already, a
// foreign key violation when the flag has no definition: it was deleted since it was read).
func (tx *Tx) InsertOverride(ctx context.Context, o FlagOverride) error {
	variant := sql.NullString{String: o.Variant, Valid: o.Variant != ""}
	_, err := tx.ExecContext(ctx, tx.q.insertOverride, tx.tenant, o.FlagKey, variant, o.Disabled, o.SetByPlatform, o.Version, o.UpdatedAt.UTC(), o.UpdatedBy)
	return err
}

// UpdateOverride replaces the tenant's override, or ErrOverrideNotFound.
func (tx *Tx) UpdateOverride(ctx context.Context, o FlagOverride) error {
	variant := sql.NullString{String: o.Variant, Valid: o.Variant != ""}
	return tx.execOne(ctx, ErrOverrideNotFound, tx.q.updateOverride, tx.tenant, o.FlagKey, variant, o.Disabled, o.SetByPlatform, o.Version, o.UpdatedAt.UTC(), o.UpdatedBy)
}

// DeleteOverride deletes the tenant's override of key, or ErrOverrideNotFound.
func (tx *Tx) DeleteOverride(ctx context.Context, key string) error {
	return tx.execOne(ctx, ErrOverrideNotFound, tx.q.deleteOverride, tx.tenant, key)
}

func scanOverride(r scanner) (FlagOverride, error) {
	var o FlagOverride
	var variant sql.NullString
	if err := r.Scan(&o.FlagKey, &variant, &o.Disabled, &o.SetByPlatform, &o.Version, &o.UpdatedAt, &o.UpdatedBy); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return o, ErrOverrideNotFound
		}
		return o, err
	}
	o.Variant, o.UpdatedAt = variant.String, o.UpdatedAt.UTC()
	return o, nil
}

// ---- settings ----

// SettingDefinitions returns every setting definition, by key in byte order.
func (tx *Tx) SettingDefinitions(ctx context.Context) ([]SettingDefinition, error) {
	rows, err := tx.QueryContext(ctx, tx.q.settingDefinitions)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []SettingDefinition{}
	for rows.Next() {
		d, err := scanSettingDefinition(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// SettingDefinition returns the setting's definition, or ErrSettingNotFound (any scope).
func (tx *Tx) SettingDefinition(ctx context.Context, key string) (SettingDefinition, error) {
	return scanSettingDefinition(tx.QueryRowContext(ctx, tx.q.settingDefinition, key))
}

// LockSettingDefinition returns the setting's definition, locked, or ErrSettingNotFound
// (platform scope).
func (tx *Tx) LockSettingDefinition(ctx context.Context, key string) (SettingDefinition, error) {
	return scanSettingDefinition(tx.QueryRowContext(ctx, tx.q.lockSettingDefinition, key))
}

// UpsertSettingDefinition inserts or replaces a setting definition (platform scope). A type
// change while a tenant holds a value is ErrSettingTypeInUse.
func (tx *Tx) UpsertSettingDefinition(ctx context.Context, d SettingDefinition) error {
	_, err := tx.ExecContext(ctx, tx.q.upsertSettingDefinition, d.Key, string(d.Type), string(d.Default), d.TenantWritable, d.Version, d.UpdatedAt.UTC(), d.UpdatedBy)
	if errors.Is(sqlstore.Translate(tx.Dialect, err), sqlstore.ErrForeignKey) {
		return ErrSettingTypeInUse
	}
	return err
}

func scanSettingDefinition(r scanner) (SettingDefinition, error) {
	var d SettingDefinition
	var typ, def string
	if err := r.Scan(&d.Key, &typ, &def, &d.TenantWritable, &d.Version, &d.UpdatedAt, &d.UpdatedBy); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return d, ErrSettingNotFound
		}
		return d, err
	}
	d.Type, d.Default, d.UpdatedAt = flags.Type(typ), json.RawMessage(def), d.UpdatedAt.UTC()
	return d, nil
}

// Settings returns the tenant's setting values, by key in byte order.
func (tx *Tx) Settings(ctx context.Context) ([]Setting, error) {
	rows, err := tx.QueryContext(ctx, tx.q.settings, tx.tenant)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Setting{}
	for rows.Next() {
		s, err := scanSetting(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Setting returns the tenant's value of key, or ErrSettingNotFound.
func (tx *Tx) Setting(ctx context.Context, key string) (Setting, error) {
	return scanSetting(tx.QueryRowContext(ctx, tx.q.setting, tx.tenant, key))
}

// LockSetting returns the tenant's value of key, locked, or ErrSettingNotFound.
func (tx *Tx) LockSetting(ctx context.Context, key string) (Setting, error) {
	return scanSetting(tx.QueryRowContext(ctx, tx.q.lockSetting, tx.tenant, key))
}

// UpsertSetting inserts or replaces the tenant's value, of the definition's type typ: a foreign
// key violation when the definition no longer has that type.
func (tx *Tx) UpsertSetting(ctx context.Context, s Setting, typ flags.Type) error {
	_, err := tx.ExecContext(ctx, tx.q.upsertSetting, tx.tenant, s.Key, string(s.Value), s.Version, s.UpdatedAt.UTC(), s.UpdatedBy, string(typ), s.SetByPlatform)
	return err
}

func scanSetting(r scanner) (Setting, error) {
	var s Setting
	var v string
	if err := r.Scan(&s.Key, &v, &s.SetByPlatform, &s.Version, &s.UpdatedAt, &s.UpdatedBy); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return s, ErrSettingNotFound
		}
		return s, err
	}
	s.Value, s.UpdatedAt = json.RawMessage(v), s.UpdatedAt.UTC()
	return s, nil
}

// execOne runs a statement that must change one row; none is notFound.
func (tx *Tx) execOne(ctx context.Context, notFound error, query string, args ...any) error {
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return notFound
	}
	return nil
}
