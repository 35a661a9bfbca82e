package main

import (
	"context"
	"flag"
	"io"
	"log/slog"

	"spine/shared/mail/smtpsink"
	"spine/shared/secrets/kvfake"
)

// keyvaultFakeCmd serves the local stack's Key Vault fake (shared/secrets/kvfake) over TLS until
// ctx ends: `handler keyvault-fake --addr 127.0.0.1:<port> --dir <folder>`. The folder holds its
// self-signed certificate (cert.pem, the CA file clients trust: SPINE_KEYVAULT_CA_FILE), its key
// and the vault's content (secrets.json, mode 0600), so secrets survive a restart. Local only: it
// accepts any bearer token and refuses to listen on a non-loopback address.
func keyvaultFakeCmd(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("keyvault-fake", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8443", "loopback host:port to listen on")
	dir := fs.String("dir", "", "folder for the certificate (cert.pem, key.pem) and the data file")
	data := fs.String("data", "", `data file (default <dir>/secrets.json; "-" keeps the vault in memory)`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := newLogger(stderr, slog.LevelInfo)
	return kvfake.Run(ctx, kvfake.RunOptions{Addr: *addr, Dir: *dir, DataFile: *data, Logger: logger})
}

// smtpSinkCmd serves the local stack's SMTP sink (shared/mail/smtpsink) until ctx ends:
// `handler smtp-sink --addr 127.0.0.1:<port> --dir <folder>`. Every message it accepts is written
// to the folder as an .eml file. Local only: no TLS, no authentication, loopback addresses only.
func smtpSinkCmd(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("smtp-sink", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:2525", "loopback host:port to listen on")
	dir := fs.String("dir", "", "folder the .eml files are written to (none: kept in memory only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return smtpsink.Run(ctx, *addr, *dir, newLogger(stderr, slog.LevelInfo))
}
