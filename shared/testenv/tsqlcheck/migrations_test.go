package tsqlcheck

import (
	"os"
	"strings"
	"testing"
)

// The migration checker finds each mistake in testdata/migrations_bad and nothing in
// testdata/migrations_good, so it is not vacuous, and it reads the batches as goose splits them.
func TestCheckMigrations_CatchesMistakesAndOnlyThem(t *testing.T) {
	var complaints []string
	if err := checkMigrations(collect(&complaints), os.DirFS("testdata/migrations_bad")); err != nil {
		t.Fatal(err)
	}
	all := strings.Join(complaints, "\n")
	for _, want := range []string{
		"00001_bad.sql (Up): CREATE SCHEMA must begin its batch",
		"@split is not declared in this batch",
		"things is not schema-qualified",
		`PostgreSQL syntax or a T-SQL error (PostgreSQL type: "uuid")`,
		`(unbracketed key: "key")`,
		`(CREATE ... IF NOT EXISTS: "CREATE INDEX IF NOT EXISTS")`,
		"00001_bad.sql (Up) EXEC'd: CREATE FUNCTION must begin its batch",
		"a {{placeholder}} is left",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no complaint %q among:\n%s", want, all)
		}
	}

	complaints = nil
	if err := checkMigrations(collect(&complaints), os.DirFS("testdata/migrations_good")); err != nil {
		t.Fatal(err)
	}
	if len(complaints) > 0 {
		t.Errorf("complaints about testdata/migrations_good:\n%s", strings.Join(complaints, "\n"))
	}
}

// Batches are goose's: outside a StatementBegin/StatementEnd block a statement ends at a
// semicolon that ends a line, inside one the block is one batch.
func TestBatches_AreGooseStatements(t *testing.T) {
	got, err := Batches(os.DirFS("testdata/migrations_good"))
	if err != nil {
		t.Fatal(err)
	}
	var up, down int
	for _, b := range got {
		if b.Up {
			up++
		} else {
			down++
		}
	}
	if up != 6 || down != 4 {
		t.Fatalf("batches: %d up, %d down; want 6 and 4:\n%v", up, down, got)
	}
	if !strings.HasPrefix(strings.TrimSpace(got[3].SQL), "DECLARE @sql") || !strings.Contains(got[3].SQL, "END;") {
		t.Errorf("the DECLARE block is not one batch: %q", got[3].SQL)
	}
}

// A procedure's parameters may be named like keywords (@from, @to) and declared without
// parentheses: they are declared variables, not tables.
func TestCheckBatch_ProcedureParametersNamedLikeKeywords(t *testing.T) {
	var complaints []string
	CheckBatch(collect(&complaints), "proc", `CREATE OR ALTER PROCEDURE dbo.prune_things @from datetime2(6), @to datetime2(6)
WITH EXECUTE AS OWNER
AS
BEGIN
    SET NOCOUNT ON;
    DELETE FROM dbo.things WHERE made_at >= @from AND made_at <= @to;
    SELECT CAST(@@ROWCOUNT AS bigint) AS deleted;
END;`)
	if len(complaints) > 0 {
		t.Errorf("complaints:\n%s", strings.Join(complaints, "\n"))
	}
	complaints = nil
	CheckBatch(collect(&complaints), "proc", `DELETE FROM things WHERE a = @undeclared;`)
	if all := strings.Join(complaints, "\n"); !strings.Contains(all, "things is not schema-qualified") || !strings.Contains(all, "@undeclared") {
		t.Errorf("complaints = %s", all)
	}
}
