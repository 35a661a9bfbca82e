package outbox

import (
	"strings"

	"spine/shared/sqlstore"
)

// insertSQL is Emit's statement per engine: the rows of Rows as parameter 1, now as parameter 2.
var insertSQL = map[sqlstore.Dialect]string{
	sqlstore.Postgres:  InsertSQL(sqlstore.Postgres, "$1", "$2"),
	sqlstore.SQLServer: InsertSQL(sqlstore.SQLServer, "@p1", "@p2"),
}

// InsertSQL is the outbox insert in d's SQL: it inserts the rows Rows encoded, passed as the
// parameter whose placeholder is rows, created and due (next_attempt_at) at the time passed as
// now, in the rows' order (so seq follows it). A store may send it as one statement of a batch or
// the main statement of a data-modifying CTE of its own, then calls Emitted; its placeholders
// are the caller's to number. next_attempt_at = created_at makes a row due at once.
func InsertSQL(d sqlstore.Dialect, rows, now string) string {
	q := pgInsert
	if d == sqlstore.SQLServer {
		q = msInsert
	}
	return strings.NewReplacer("{rows}", rows, "{now}", now).Replace(q)
}

// The inserts, by engine. The JSON's properties are named so that no select list holds a raw
// tenant_id (tsqlcheck's rule for the stores that embed this statement).
const (
	pgInsert = `INSERT INTO outbox (tenant_id, event_id, subject, event_type, envelope, created_at, next_attempt_at)
		SELECT e.tenant, e.id, e.subject, e.kind, e.envelope, {now}, {now}
		FROM json_to_recordset({rows}::json) AS e(i int, tenant uuid, id uuid, subject text, kind text, envelope jsonb)
		ORDER BY e.i`
	// OPENJSON ... AS JSON returns the envelope's JSON text as it was sent; text is read as
	// nvarchar(max) so an over-long value fails the insert as it would as a parameter, rather than
	// being cut by OPENJSON; ORDER BY on an INSERT ... SELECT fixes the order IDENTITY values (seq)
	// are assigned in.
	msInsert = `INSERT INTO dbo.outbox (tenant_id, event_id, subject, event_type, envelope, created_at, next_attempt_at)
		SELECT e.tenant, e.id, e.subject, e.kind, e.envelope, {now}, {now}
		FROM OPENJSON({rows}) WITH (i int '$.i', tenant uniqueidentifier '$.tenant', id uniqueidentifier '$.id',
			subject nvarchar(max) '$.subject', kind nvarchar(max) '$.kind', envelope nvarchar(max) '$.envelope' AS JSON) AS e
		ORDER BY e.i`
)
