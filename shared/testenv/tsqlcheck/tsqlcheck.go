// Package tsqlcheck checks, without a server, the T-SQL a service's SQL Server store sends and the
// SQL Server migrations goose applies (CheckMigrations), for what would otherwise only fail at run
// time against a real SQL Server.
//
// A store is written once over per-engine statement sets (see [CheckStatementSets]): a struct of
// SQL strings with one value per engine, each in its own file, and one store file whose methods
// pass a set's fields to their database calls as the argument right before their parameters.
// Each service's TestSQLServerQueries hands both sets, with the store file and the service's
// uniqueidentifier columns, to CheckStatementSets; statements a store assembles at run time are
// checked one by one with [CheckStatement] and [PostgresPlaceholders].
package tsqlcheck

import (
	"regexp"
	"sort"
	"strconv"
	"strings"
)

var (
	variable = regexp.MustCompile(`@\w+`)
	declare  = regexp.MustCompile(`(?is)\bDECLARE\s+[^;]*;`)
	declared = regexp.MustCompile(`(?i)(?:DECLARE\s+|,\s*)(@\w+)\s+[a-z]`)
	// The named parameters of the system procedures the statements call.
	procParams = map[string]bool{"@Resource": true, "@LockMode": true, "@LockOwner": true, "@LockTimeout": true}
	pgIsms     = map[string]*regexp.Regexp{
		"$n placeholder":   regexp.MustCompile(`\$\d`),
		":: cast":          regexp.MustCompile(`::`),
		"LIMIT":            regexp.MustCompile(`(?i)\bLIMIT\b`),
		"ON CONFLICT":      regexp.MustCompile(`(?i)\bON\s+CONFLICT\b`),
		"RETURNING":        regexp.MustCompile(`(?i)\bRETURNING\b`),
		"FOR UPDATE":       regexp.MustCompile(`(?i)\bFOR\s+UPDATE\b`),
		"ILIKE":            regexp.MustCompile(`(?i)\bILIKE\b`),
		"now()":            regexp.MustCompile(`(?i)\bnow\s*\(`),
		"boolean literal":  regexp.MustCompile(`(?i)\b(true|false)\b`),
		"|| concatenation": regexp.MustCompile(`\|\|`),
		"advisory lock":    regexp.MustCompile(`(?i)pg_advisory`),
		"json cast":        regexp.MustCompile(`(?i)::json`),
		"unbracketed key":  regexp.MustCompile(`(?i)(^|[^\[\w.])key\b`), // KEY is reserved in T-SQL
	}
	tableRef  = regexp.MustCompile(`(?i)\b(FROM|INTO|UPDATE|JOIN)\s+([^\s(]+)`)
	selectKw  = regexp.MustCompile(`(?i)\bSELECT\b`)
	fromKw    = regexp.MustCompile(`(?i)\bFROM\b`)
	uuidText  = regexp.MustCompile(`(?i)LOWER\(CONVERT\(char\(36\),\s*[\w.]+\)\)`)
	sqlInLine = regexp.MustCompile(`\b(SELECT|INSERT|UPDATE|DELETE|MERGE|EXEC)\b`)
)

// builtinTVFs are the built-in table-valued functions a FROM may name without a schema.
var builtinTVFs = map[string]bool{"OPENJSON": true, "STRING_SPLIT": true}

// CheckStatement checks one statement, reporting each problem through errorf (t.Errorf, say),
// and returns its placeholder count N:
//   - its placeholders are go-mssqldb's @p1..@pN without gaps; any other @name must be a variable
//     declared in a DECLARE statement or a named parameter of the system procedures the stores
//     call (sp_getapplock);
//   - no PostgreSQL syntax crept in;
//   - every table it reads or writes is schema-qualified (dbo.); built-in table-valued functions
//     (OPENJSON, STRING_SPLIT) are not tables;
//   - no select list holds one of uuidColumns raw (go-mssqldb scans a uniqueidentifier as
//     mixed-endian bytes), only as LOWER(CONVERT(char(36), col)) or through a column that holds
//     its canonical text;
//   - its parentheses and quotes balance.
func CheckStatement(errorf func(format string, args ...any), name, query string, uuidColumns ...string) int {
	vars := map[string]bool{}
	for _, decl := range declare.FindAllString(query, -1) {
		for _, m := range declared.FindAllStringSubmatch(decl, -1) {
			vars[m[1]] = true
		}
	}
	seen := map[int]bool{}
	for _, p := range variable.FindAllString(query, -1) {
		if vars[p] || procParams[p] {
			continue
		}
		n, err := strconv.Atoi(strings.TrimPrefix(p, "@p"))
		if !strings.HasPrefix(p, "@p") || err != nil || n < 1 {
			errorf("%s: %s is neither a go-mssqldb positional parameter (@p1, @p2, ...) nor a declared variable", name, p)
			continue
		}
		seen[n] = true
	}
	nums := make([]int, 0, len(seen))
	for n := range seen {
		nums = append(nums, n)
	}
	sort.Ints(nums)
	for i, n := range nums {
		if n != i+1 {
			errorf("%s: placeholders %v are not contiguous from @p1", name, nums)
			break
		}
	}
	for what, re := range pgIsms {
		if re.MatchString(query) {
			errorf("%s: PostgreSQL-ism or T-SQL error (%s): %s", name, what, query)
		}
	}
	for _, m := range tableRef.FindAllStringSubmatch(query, -1) {
		if !strings.HasPrefix(m[2], "dbo.") && !builtinTVFs[strings.ToUpper(m[2])] {
			errorf("%s: %s %s is not schema-qualified (dbo.)", name, m[1], m[2])
		}
	}
	if raw := uuidColumnsRE(uuidColumns); raw != nil {
		for _, loc := range selectKw.FindAllStringIndex(query, -1) {
			list := query[loc[1]:]
			if end := fromKw.FindStringIndex(list); end != nil {
				list = list[:end[0]]
			}
			if col := raw.FindString(uuidText.ReplaceAllString(list, "")); col != "" {
				errorf("%s: selects the uniqueidentifier %s raw (go-mssqldb returns mixed-endian bytes); "+
					"select LOWER(CONVERT(char(36), %s)) or a column holding its canonical text", name, col, col)
			}
		}
	}
	if strings.Count(query, "(") != strings.Count(query, ")") {
		errorf("%s: unbalanced parentheses", name)
	}
	if strings.Count(query, "'")%2 != 0 {
		errorf("%s: unbalanced quotes", name)
	}
	return len(nums)
}

// uuidColumnsRE matches any of cols as a whole word, or is nil when there are none.
func uuidColumnsRE(cols []string) *regexp.Regexp {
	if len(cols) == 0 {
		return nil
	}
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = regexp.QuoteMeta(c)
	}
	return regexp.MustCompile(`\b(` + strings.Join(quoted, "|") + `)\b`)
}

var (
	pgPlaceholder = regexp.MustCompile(`\$(\d+)`)
	tsqlParam     = regexp.MustCompile(`@p\d`)
)

// PostgresPlaceholders checks one PostgreSQL statement of a store whose Go is shared with SQL
// Server, reporting each problem through errorf, and returns its placeholder count N: its
// placeholders are $1..$N without gaps, and no go-mssqldb placeholder (@p1) crept in.
func PostgresPlaceholders(errorf func(format string, args ...any), name, query string) int {
	seen, highest := map[int]bool{}, 0
	for _, m := range pgPlaceholder.FindAllStringSubmatch(query, -1) {
		n, _ := strconv.Atoi(m[1])
		seen[n], highest = true, max(highest, n)
	}
	if seen[0] || highest != len(seen) {
		errorf("%s: PostgreSQL placeholders are not contiguous from $1", name)
	}
	if tsqlParam.MatchString(query) {
		errorf("%s: T-SQL placeholder in a PostgreSQL statement: %s", name, query)
	}
	return highest
}
