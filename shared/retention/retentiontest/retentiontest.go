// Package retentiontest opens the retention ledger of the test stack for the services' sweep
// tests (the engine's own tests live in shared/retention).
package retentiontest

import (
	"context"
	"testing"

	"spine/shared/retention"
	"spine/shared/testenv"
)

// Ledger is the ledger on the stack's Azurite Table service (SPINE_STORAGE_CONNECTION_STRING), its
// tables created. Every test package on the stack shares it: register sweeps under test-unique
// names, or use fresh tenant ids.
func Ledger(tb testing.TB) *retention.Ledger {
	tb.Helper()
	conn, err := testenv.Require("SPINE_STORAGE_CONNECTION_STRING")
	if err != nil {
		tb.Fatal(err)
	}
	l, err := retention.OpenLedger(conn, "")
	if err != nil {
		tb.Fatal(err)
	}
	if err := l.EnsureTables(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return l
}
