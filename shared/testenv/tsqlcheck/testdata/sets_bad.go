// A store file with one of each mistake CheckStatementSets finds in a file: parsed by tsqlcheck's
// tests, never compiled.
package store

type store struct{ q *statements }

func (s *store) one(db querier, id string, args []any) {
	db.QueryRow(s.q.one, id)
	db.QueryRow(s.q.one, args...)
	db.Exec("DELETE FROM dbo.things")
	q := s.q.two
	db.Exec(q)
}
