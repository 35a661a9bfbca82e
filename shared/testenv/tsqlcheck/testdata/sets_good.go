// A store file CheckStatementSets accepts: parsed by tsqlcheck's tests, never compiled.
package store

type store struct{ q *statements }

func (s *store) get(db querier, id, key string) { db.QueryRow(s.q.get, id, key) }

func (s *store) lock(db querier, resource string) { db.Exec(s.q.lock, resource) }

func (s *store) insertAll(db querier, id, rows string) { db.Exec(s.q.insertAll, id, rows) }

// A method may share a statement's name.
func (s *store) get2(db querier, id, key string) { s.get(db, id, key) }
