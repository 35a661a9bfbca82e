package tsqlcheck

import (
	"fmt"
	"strings"
	"testing"
)

// collect returns an errorf that appends to *complaints.
func collect(complaints *[]string) func(format string, args ...any) {
	return func(format string, args ...any) { *complaints = append(*complaints, fmt.Sprintf(format, args...)) }
}

// TestSQLServerQueries_CheckerCatchesMistakes proves the checker is not vacuous.
func TestSQLServerQueries_CheckerCatchesMistakes(t *testing.T) {
	for name, q := range map[string]string{
		"gap":         `SELECT seq FROM dbo.audit_entries WHERE tenant_id = @p1 AND seq > @p3`,
		"pg syntax":   `SELECT seq FROM dbo.audit_entries WHERE tenant_id = $1 LIMIT 1`,
		"unqualified": `SELECT seq FROM audit_entries WHERE tenant_id = @p1`,
		"raw uuid":    `SELECT entry_id FROM dbo.audit_entries WHERE tenant_id = @p1`,
		"undeclared":  `SELECT seq FROM dbo.audit_entries WHERE tenant_id = @tenant`,
	} {
		var complaints []string
		CheckStatement(collect(&complaints), name, q, "tenant_id", "entry_id")
		if len(complaints) == 0 {
			t.Errorf("%s: the checker accepted %s", name, q)
		}
	}
}

// The file-level half finds each of its mistakes in testdata/store_bad.go, and nothing in
// testdata/store_good.go, whose statements use what the checker must allow: canonical-text
// uniqueidentifiers, a bracketed [key], declared variables and sp_getapplock's parameters.
func TestCheckStoreFile_CatchesMistakesAndOnlyThem(t *testing.T) {
	var complaints []string
	err := checkStoreFile(collect(&complaints), "testdata/store_bad.go", map[string]string{
		"msqOne":    `SELECT name FROM dbo.things WHERE thing_id = @p1 AND kind = @p2`,
		"msqUnused": `SELECT name FROM dbo.things`,
		"msqGone":   `SELECT name FROM dbo.things`,
	}, []string{"thing_id"})
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(complaints, "\n")
	for _, want := range []string{
		"msqOne has 2 placeholders but the call passes 1 arguments",
		"msqOne is called with a spread argument list",
		"store_bad.go:14:10: inline SQL",
		"msqUnlisted is declared in testdata/store_bad.go but missing",
		"list msqGone, which testdata/store_bad.go no longer declares",
		"msqUnused is never used",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no complaint %q among:\n%s", want, all)
		}
	}

	complaints = nil
	err = checkStoreFile(collect(&complaints), "testdata/store_good.go", map[string]string{
		"msqGet": `SELECT LOWER(CONVERT(char(36), thing_id)), name FROM dbo.things WHERE thing_id = @p1 AND [key] = @p2`,
		"msqLock": `DECLARE @result int;
		EXEC @result = sp_getapplock @Resource = @p1, @LockMode = 'Exclusive', @LockOwner = 'Transaction', @LockTimeout = -1;
		SELECT @result`,
	}, []string{"thing_id"})
	if err != nil {
		t.Fatal(err)
	}
	if len(complaints) != 0 {
		t.Errorf("complaints about a correct store file:\n%s", strings.Join(complaints, "\n"))
	}

	if err := checkStoreFile(collect(&complaints), "testdata/no_such_file.go", nil, nil); err == nil {
		t.Error("a missing store file is not an error")
	}
}

func TestCheckStatement_CountsPlaceholders(t *testing.T) {
	var complaints []string
	n := CheckStatement(collect(&complaints), "q", `UPDATE dbo.things SET name = @p2, kind = @p3 WHERE thing_id = @p1 AND @p2 <> N''`)
	if n != 3 || len(complaints) != 0 {
		t.Fatalf("N = %d, complaints %v; want 3 and none", n, complaints)
	}
}
