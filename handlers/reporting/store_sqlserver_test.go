package reporting

import (
	"testing"

	"spine/shared/testenv/tsqlcheck"
)

// TestSQLServerStatements checks the statement sets without a server: placeholders, no PostgreSQL
// syntax in the T-SQL, equal parameter counts, every call in store.go passing that many, no inline
// SQL. No SQL Server runs here: the T-SQL set is checked and reviewed, not executed.
func TestSQLServerStatements(t *testing.T) {
	tsqlcheck.CheckStatementSets(t, "store.go", msStatements, pgStatements, "tenant_id", "report_id", "run_id", "user_id", "role_id")
}
