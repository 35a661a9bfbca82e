// A store file CheckStoreFile accepts: parsed by tsqlcheck's tests, never compiled.
package store

const (
	msqGet  = `SELECT LOWER(CONVERT(char(36), thing_id)), name FROM dbo.things WHERE thing_id = @p1 AND [key] = @p2`
	msqLock = `DECLARE @result int;
		EXEC @result = sp_getapplock @Resource = @p1, @LockMode = 'Exclusive', @LockOwner = 'Transaction', @LockTimeout = -1;
		SELECT @result`
)

func get(db querier, id, key string) { db.QueryRow(msqGet, id, key) }

func lock(db querier, resource string) { db.Exec(msqLock, resource) }
