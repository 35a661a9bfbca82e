package main

import (
	"strings"
	"testing"
)

func TestTxControlClassifiesTransactionStatements(t *testing.T) {
	for q, want := range map[string]string{
		"begin": "begin", "BEGIN ISOLATION LEVEL READ COMMITTED": "begin", "start transaction": "begin",
		"commit": "commit", " COMMIT;": "commit", "end": "commit",
		"rollback": "rollback", "ROLLBACK TO SAVEPOINT a": "", "abort": "rollback",
		"SELECT 1": "", "INSERT INTO outbox VALUES ($1)": "", "": "",
	} {
		if got := txControl(q); got != want {
			t.Errorf("txControl(%q) = %q, want %q", q, got, want)
		}
	}
}

func TestSummarizeCountsTopLevelStatementsAndCommitsPerOperation(t *testing.T) {
	all := []pgStatement{
		{Database: "tenants", Toplevel: true, Calls: 100, TotalMS: 50, Query: "INSERT INTO tenants VALUES ($1)"},
		{Database: "tenants", Toplevel: true, Calls: 100, TotalMS: 1, Query: "begin"},
		{Database: "tenants", Toplevel: true, Calls: 100, TotalMS: 2, Query: "commit"},
		{Database: "audit", Toplevel: true, Calls: 50, TotalMS: 90, Query: "INSERT INTO audit_entries\n   VALUES ($1)"},
		{Database: "audit", Toplevel: true, Calls: 50, TotalMS: 1, Query: "commit"},
		{Database: "audit", Toplevel: true, Calls: 3, TotalMS: 1, Query: "rollback"},
		{Database: "tenants", Toplevel: false, Calls: 200, TotalMS: 10, Query: "SELECT 1 FROM ONLY tenants x FOR KEY SHARE OF x"},
	}
	st := summarize(all, 100, "request")
	if st.Statements != 403 || st.Commits != 150 || st.Rollbacks != 3 || st.Nested != 200 {
		t.Fatalf("statements %d commits %d rollbacks %d nested %d; want 403, 150, 3, 200", st.Statements, st.Commits, st.Rollbacks, st.Nested)
	}
	if st.StatementsPerOp != 4.03 || st.CommitsPerOp != 1.5 {
		t.Errorf("per request: %v statements, %v commits; want 4.03, 1.5", st.StatementsPerOp, st.CommitsPerOp)
	}
	if len(st.PerDatabase) != 2 || st.PerDatabase[0] != (pgDBCount{"tenants", 300, 100}) || st.PerDatabase[1] != (pgDBCount{"audit", 103, 50}) {
		t.Errorf("per database %+v", st.PerDatabase)
	}
	if st.Top[0].TotalMS != 90 || st.Top[0].Query != "INSERT INTO audit_entries VALUES ($1)" || st.Top[1].TotalMS != 50 {
		t.Errorf("top is not by total time with one-line queries: %+v", st.Top[:2])
	}
	line := st.line("POST /api/tenants")
	for _, want := range []string{"4.0 statements, 1.50 commits per request", "tenants 3.0/1.0", "audit 1.0/0.5", "2.0 nested", "3 rollbacks"} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %q", line, want)
		}
	}
}

func TestSummarizeWithoutOperationsSaysSoInsteadOfDividing(t *testing.T) {
	st := summarize([]pgStatement{{Database: "audit", Toplevel: true, Calls: 7, Query: "commit"}}, 0, "event")
	if st.StatementsPerOp != 0 || !strings.Contains(st.line("drain"), "no completed event") {
		t.Errorf("got %v per op, line %q", st.StatementsPerOp, st.line("drain"))
	}
}

func TestWaitLabelNamesCPUAndWaits(t *testing.T) {
	for _, c := range []struct{ typ, ev, state, want string }{
		{"Lock", "advisory", "active", "Lock:advisory"}, {"", "", "active", "CPU"},
		{"", "", "idle in transaction", "none"}, {"Client", "ClientRead", "idle", "Client:ClientRead"},
	} {
		if got := waitLabel(c.typ, c.ev, c.state); got != c.want {
			t.Errorf("waitLabel(%q, %q, %q) = %q, want %q", c.typ, c.ev, c.state, got, c.want)
		}
	}
}

func TestExplainTimesAreReadFromThePlan(t *testing.T) {
	plan := "Limit  (cost=1..2 rows=1)\nPlanning Time: 0.601 ms\nExecution Time: 12.339 ms\n"
	m := explainTimeRe.FindAllStringSubmatch(plan, -1)
	if len(m) != 2 || m[0][1] != "Planning" || m[0][2] != "0.601" || m[1][1] != "Execution" || m[1][2] != "12.339" {
		t.Errorf("matches %q", m)
	}
}
