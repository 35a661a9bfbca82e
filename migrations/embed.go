// Package migrations embeds every service's numbered SQL migrations, one folder per service and
// dialect (migrations/<service>/<dialect>/NNNNN_name.sql), applied by `handler migrate` with goose.
package migrations

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
)

//go:embed */*/*.sql
var files embed.FS

// For returns the migrations of service for dialect ("postgres" or "sqlserver").
func For(service, dialect string) (fs.FS, error) {
	sub, err := fs.Sub(files, service+"/"+dialect)
	if err != nil {
		return nil, err
	}
	if _, err := fs.Stat(files, service+"/"+dialect); err != nil {
		return nil, fmt.Errorf("migrations: no %s migrations for service %q", dialect, service)
	}
	return sub, nil
}

// Services lists the services that have migrations, sorted. It is the single list of databases
// the app needs; infra/ and the local stack check theirs against it.
func Services() []string {
	entries, _ := fs.ReadDir(files, ".")
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}
