// A store file with one of each mistake CheckStoreFile finds in a file: parsed by tsqlcheck's
// tests, never compiled.
package store

const (
	msqOne      = `SELECT name FROM dbo.things WHERE thing_id = @p1 AND kind = @p2`
	msqUnused   = `SELECT name FROM dbo.things`
	msqUnlisted = `SELECT 1`
)

func one(db querier, id string, args []any) {
	db.QueryRow(msqOne, id)
	db.QueryRow(msqOne, args...)
	db.Exec("DELETE FROM dbo.things")
	_ = msqUnlisted
}
