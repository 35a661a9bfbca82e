#!/usr/bin/env bash
# scripts/run.sh — what `make run` does: bring up the local stack "dev" (scripts/stack.sh), migrate
# every service, and serve the whole app in standalone mode on PORT until Ctrl-C; then the handler
# and the stack stop, on every exit path (a failed stack up or migration, Ctrl-C, TERM, a handler
# that exits).
#
# Usage: PORT=7071 scripts/run.sh BIN     (make run builds BIN and passes PORT and AUDIENCE)
#
# Tokens are real: the authorization server (authz) runs in the binary with the issuer
# http://127.0.0.1:$PORT/api/connect (it must be the server's own URL), its signing keys in the
# stack's Key Vault fake, and the API verifies them in process. SPINE_AUTHZ_DEV_CLIENT=true (set
# here only) makes it ensure the platform dev client `make token` mints through. Once the handler
# accepts connections, .stack/dev/run.env holds the issuer and audience for `make token`; it is
# removed when the run stops.
#
# One run per checkout: its lock (.stack/.locks/run-dev.lock) is held by this script and by the
# handler it starts. A second run refuses with one line before it touches anything, so it never
# stops the first one's stack; so does a run whose PORT another process holds.
# The handler serves its Prometheus metrics on SPINE_METRICS_ADDR, a loopback port picked and kept
# by `scripts/stack.sh port --name dev metrics` (below the ephemeral range, checked with a bind).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
BIN=${1:?usage: scripts/run.sh BIN}
PORT=${PORT:-7071}
AUDIENCE=${AUDIENCE:-spine-api}
NAME=dev
KEYS="$ROOT/.stack/$NAME/keys"
LOCKS="$ROOT/.stack/.locks"

say() { printf 'make run: %s\n' "$*" >&2; }

# make run builds into $BIN.next: the binary a running `make run` serves from is replaced only
# once this run holds the lock below, so a refused second run touches nothing.
[[ -x $BIN || -x $BIN.next ]] || { say "no handler binary at $BIN (make run builds it)"; exit 2; }
if [[ ! $PORT =~ ^[0-9]+$ ]] || ((PORT < 1 || PORT > 65535)); then
  say "PORT=$PORT is not a TCP port"
  exit 2
fi

# The lock: fd 7, inherited by the handler (so it stays held while the handler serves) and closed
# for scripts/stack.sh, whose servers must not hold it.
mkdir -p "$LOCKS"
exec 7>>"$LOCKS/run-$NAME.lock"
if ! flock -n 7; then
  info=$(cat "$LOCKS/run-$NAME.info" 2>/dev/null || true)
  say "already running in this checkout${info:+ ($info)}: use that one, or stop it (Ctrl-C) first"
  exit 1
fi
echo "pid $$, http://127.0.0.1:$PORT/api" >"$LOCKS/run-$NAME.info"
ISSUER="http://127.0.0.1:$PORT/api/connect"
RUNENV="$ROOT/.stack/$NAME/run.env"
if [[ -x $BIN.next ]]; then mv -f "$BIN.next" "$BIN"; fi

if ! scripts/stack.sh free "$PORT" 7>&-; then
  say "port $PORT is in use by another process: stop it, or choose another port (make run PORT=7072)"
  exit 1
fi

child="" stopping=0
# shellcheck disable=SC2317 # cleanup and on_signal run from traps
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [[ -n $child ]] && kill -0 "$child" 2>/dev/null; then
    kill -TERM "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  rm -f "$RUNENV"
  say "stopping the local stack"
  scripts/stack.sh down --name "$NAME" >/dev/null 7>&- || say "scripts/stack.sh down --name $NAME failed; run it again"
  rm -f "$LOCKS/run-$NAME.info"
  exit "$rc"
}
# shellcheck disable=SC2317
on_signal() {
  stopping=1
  if [[ -n $child ]]; then
    kill -TERM "$child" 2>/dev/null || true # the handler shuts down gracefully; we wait for it
  else
    exit 130
  fi
}
trap cleanup EXIT
trap on_signal INT TERM HUP

metrics_port=$(scripts/stack.sh port --name "$NAME" metrics 7>&-)
scripts/stack.sh up --name "$NAME" >/dev/null 7>&-

set -a
# shellcheck disable=SC1090 # written by scripts/stack.sh up
. "$ROOT/.stack/$NAME/env"
set +a
# No SPINE_AUTH_JWKS_FILE / _URL: the API reads the authorization server's keys in process.
unset SPINE_AUTH_JWKS_FILE SPINE_AUTH_JWKS_URL SPINE_DEV_KEY_DIR
export SPINE_AUTH_ISSUER="$ISSUER" SPINE_AUTH_AUDIENCE="$AUDIENCE" SPINE_AUTHZ_DEV_CLIENT=true SPINE_EGRESS_ALLOW_LOOPBACK=true \
  SPINE_STANDALONE=true PORT SPINE_METRICS_ADDR="127.0.0.1:$metrics_port"
# The dev signing key is only for make package's func start settings (scripts/localsettings).
SPINE_DEV_KEY_DIR="$KEYS" "$BIN" devkey >/dev/null
if ! out=$("$BIN" migrate 2>&1); then
  printf '%s\n' "$out" >&2
  say "migrate failed"
  exit 1
fi
printf '%s\n' "$out" | tail -n 2

"$BIN" serve &
child=$!
# "Serving" only once the handler accepts connections (PORT was bindable just before, so what
# answers is the handler); if it exits first, its own error is above and its status is ours.
ready=0
for ((i = 0; ; i++)); do
  kill -0 "$child" 2>/dev/null || break
  if (exec 6<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    ready=1
    break
  fi
  ((i == 300)) && say "the handler does not accept connections on port $PORT after 30 s; still waiting"
  sleep 0.1
done
if ((ready)); then
  printf "export SPINE_AUTH_ISSUER='%s' SPINE_AUTH_AUDIENCE='%s'\n" "$ISSUER" "$AUDIENCE" >"$RUNENV"
  cat <<EOF

Spine is serving on http://127.0.0.1:$PORT/api (health: /api/health)
Metrics (Prometheus): http://127.0.0.1:$metrics_port/metrics
Authorization server: $ISSUER (discovery: /.well-known/openid-configuration); its keys live in the stack's Key Vault fake.
One token for everything the README shows (platform admin; pass ?tenantId=<id> for a tenant's audit trail):
  ADMIN=\$(make -s token ARGS='--platform-admin --scopes tenant.read,tenant.manage,audit.read,audit.write,platform.ops,client.manage')
A tenant's own token:  make -s token ARGS='--tenant <id> --scopes tenant.read,tenant.manage,audit.read,audit.write'
Your own client of tenant <id>, and a token with curl (client_credentials; the secret is shown once):
  CLIENT=\$(curl -s -X POST 'http://127.0.0.1:$PORT/api/clients?tenantId=<id>' -H "Authorization: Bearer \$ADMIN" -H 'Content-Type: application/json' \\
    -d '{"name":"my-app","clientType":"confidential","grantTypes":["client_credentials"],"scopes":["tenant.read"]}')
  curl -s -u "\$(jq -r .id <<<"\$CLIENT"):\$(jq -r .clientSecret <<<"\$CLIENT")" -d grant_type=client_credentials -d scope=tenant.read \\
    http://127.0.0.1:$PORT/api/connect/token
A registered tenant's audit entries: GET /api/audit-entries?tenantId=<id> (they arrive through the outbox).
Ctrl-C stops the server and the local stack.

EOF
fi
status=0
while :; do
  if wait "$child"; then status=0; else status=$?; fi
  kill -0 "$child" 2>/dev/null || break # else: wait was interrupted by a signal we trapped
done
child=""
if ((stopping)) && ((status == 0 || status == 130 || status == 143)); then
  exit 0
fi
((status == 0)) || say "the handler exited with status $status"
exit "$status"
