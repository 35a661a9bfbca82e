#!/usr/bin/env bash
# scripts/stack.sh — the project's local stack: PostgreSQL, Redis and Azurite, started from
# installed binaries on free loopback ports under .stack/<name>/ of the checkout (git-ignored).
# Stacks with different names (make run: dev, make test: test, make bench: bench) are isolated
# from each other and can run at the same time.
#
# Usage: scripts/stack.sh <subcommand> [--name NAME] [flags]      (NAME defaults to "dev")
#
#   up     [--name N] [--fast]   install what is missing (apt-get as root; npm ci for Azurite), then
#                                start PostgreSQL, Redis and Azurite, create the per-service roles and
#                                databases, write .stack/N/env. Idempotent: on a running stack it only
#                                creates what is missing. Prints the env file's path on stdout; all
#                                other output (progress, summary) goes to stderr.
#                                --fast (tests): PostgreSQL with fsync, synchronous_commit and
#                                full_page_writes off. The flags of the latest `up` win (reloaded).
#   down   [--name N] [--purge]  stop all three (never fails if already down); --purge also deletes
#                                .stack/N (data, passwords, ports).
#   env    [--name N]            print the env file's path (exit 1 if the stack was never brought up):
#                                   . "$(scripts/stack.sh env --name test)"
#   status [--name N]            print what runs where; exit 0 if all three run, 3 otherwise.
#
# Owning services (one database each): the directory names under migrations/, read on every `up`
# (migrations/tenants/ -> service "tenants"). With no migrations/ folder, or no folder in it, the
# list falls back to "tenants". SPINE_STACK_SERVICES="tenants audit" (spaces or commas) overrides
# the list. Names must match ^[a-z][a-z0-9_]*$. For each service S PostgreSQL gets:
#   role S_owner (LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB NOBYPASSRLS)  — runs the migrations
#   role S_app   (LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB NOBYPASSRLS)  — the runtime role
#   database S OWNED BY S_owner; REVOKE ALL ON DATABASE S FROM PUBLIC; GRANT CONNECT ... TO S_app;
#   in S: REVOKE CREATE ON SCHEMA public FROM PUBLIC; ALTER SCHEMA public OWNER TO S_owner;
#         GRANT USAGE ON SCHEMA public TO S_app.   (Table grants are the migrations' job.)
# CONNECT and TEMPORARY on the maintenance databases postgres and template1 are revoked from PUBLIC
# too, so a service role can connect to its own database only. The superuser is spine_admin.
#
# Env file (.stack/N/env, `export KEY='value'` lines, POSIX-sh sourceable, mode 600):
#   SPINE_STACK_NAME, SPINE_STACK_DIR, SPINE_DB_SERVICES (space-separated list)
#   SPINE_PG_HOST=127.0.0.1, SPINE_PG_PORT, SPINE_PG_ADMIN_USER, SPINE_PG_ADMIN_PASSWORD,
#   SPINE_PG_ADMIN_URL=postgres://spine_admin:PW@127.0.0.1:PORT/postgres?sslmode=disable
#   per service S (upper-cased, e.g. TENANTS):
#     SPINE_S_DB_DIALECT=postgres
#     SPINE_S_DB_URL=postgres://s_app:PW@127.0.0.1:PORT/s?sslmode=disable
#     SPINE_S_DB_MIGRATE_URL=postgres://s_owner:PW@127.0.0.1:PORT/s?sslmode=disable
#     SPINE_S_DB_OWNER_PASSWORD, SPINE_S_DB_APP_PASSWORD
#   SPINE_REDIS_HOST=127.0.0.1, SPINE_REDIS_PORT, SPINE_REDIS_URL=redis://127.0.0.1:PORT/0
#   SPINE_STORAGE_CONNECTION_STRING (Azurite's well-known devstoreaccount1 account and key, with
#     BlobEndpoint/QueueEndpoint/TableEndpoint=http://127.0.0.1:PORT/devstoreaccount1),
#   SPINE_STORAGE_ACCOUNT_NAME, SPINE_STORAGE_ACCOUNT_KEY,
#   SPINE_STORAGE_BLOB_PORT, SPINE_STORAGE_QUEUE_PORT, SPINE_STORAGE_TABLE_PORT
#
# Ports (random in 20000-45000, checked free, distinct across all stacks of this checkout) and
# passwords (random per stack) are kept in .stack/N/state and reused by later `up` calls, so a
# restarted stack keeps its URLs; a kept port that something else took meanwhile is replaced.
#
# Layout of .stack/N/: env, state, pgdata/, pgsock/ (unix socket dir), postgres.log, redis.conf,
# redis/ (dir), redis.pid, redis.log, azurite/ (--location), azurite.pid, azurite.log.
# (A checkout path too long for a unix socket moves pgsock/ to /tmp/spine-stack-<cksum>.)
#
# As root, PostgreSQL runs as the system user spinepg (created if missing; initdb refuses root),
# and missing packages are installed with apt-get. As another user, PostgreSQL runs as that user
# and a missing package is an error that says what to install.
# Azurite is pinned (exact version) in package.json / package-lock.json at the repo root; `up` runs
# `npm ci` when node_modules/.bin/azurite is missing or package-lock.json is newer than the install.
# Azurite 3.37.0 declares node >= 22 but runs on the build machines' Node 20 (blob, queue and table
# checked), so npm ci runs with --engine-strict=false.
# Environment knobs: SPINE_STACK_SERVICES (above), SPINE_STACK_TIMEOUT (readiness wait, seconds,
# default 60), SPINE_PG_BIN (PostgreSQL bin dir; default: the newest /usr/lib/postgresql/*/bin).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
STACKS="$ROOT/.stack"
PORT_MIN=20000
PORT_MAX=45000
TIMEOUT="${SPINE_STACK_TIMEOUT:-60}"
PG_ADMIN_USER=spine_admin
PG_OS_USER_ROOT=spinepg
# Azurite's published development account (https://learn.microsoft.com/azure/storage/common/storage-use-azurite).
AZ_ACCOUNT=devstoreaccount1
AZ_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
PORT_KEYS=(PG_PORT REDIS_PORT BLOB_PORT QUEUE_PORT TABLE_PORT)

# Set by parse_args / setup_paths.
CMD="" NAME=dev FAST=0 PURGE=0
SD="" STATE="" ENVFILE="" PGDATA="" PGSOCK="" PGBIN="" PG_OS_USER=""
SERVICES=()
declare -A ST=()
APT_UPDATED=0

log() { printf 'stack[%s]: %s\n' "$NAME" "$*" >&2; }
die() { printf 'stack[%s]: error: %s\n' "$NAME" "$*" >&2; exit 1; }

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

# ---------------------------------------------------------------------------------------------
# arguments, paths, locks, state
# ---------------------------------------------------------------------------------------------

parse_args() {
  [[ $# -ge 1 ]] || { usage >&2; exit 2; }
  CMD=$1; shift
  while [[ $# -gt 0 ]]; do
    case $1 in
      --name) [[ $# -ge 2 ]] || die "--name needs a value"; NAME=$2; shift 2 ;;
      --name=*) NAME=${1#--name=}; shift ;;
      --fast) FAST=1; shift ;;
      --purge) PURGE=1; shift ;;
      -h|--help) usage; exit 0 ;;
      *) die "unknown argument: $1 (see scripts/stack.sh --help)" ;;
    esac
  done
  [[ $NAME =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$ ]] || die "bad --name '$NAME' (letters, digits, . _ -)"
}

setup_paths() {
  SD="$STACKS/$NAME"
  STATE="$SD/state"
  ENVFILE="$SD/env"
  PGDATA="$SD/pgdata"
  PGSOCK="$SD/pgsock"
  # A unix socket path is limited to ~107 bytes; fall back to a short per-stack dir under /tmp.
  if (( ${#PGSOCK} + 20 > 100 )); then
    PGSOCK="/tmp/spine-stack-$(printf '%s' "$SD" | cksum | cut -d' ' -f1)"
  fi
}

# lock FD FILE: take an exclusive lock (waits up to 10 minutes). The FD is closed for daemons.
lock() {
  mkdir -p "$STACKS/.locks"
  eval "exec $1>\"\$STACKS/.locks/$2\""
  flock -w 600 "$1" || die "timed out waiting for lock $2"
}
unlock() { eval "exec $1>&-"; }

state_load() {
  ST=()
  [[ -f $STATE ]] || return 0
  local k v
  while IFS='=' read -r k v; do
    if [[ $k =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then ST[$k]=$v; fi
  done <"$STATE"
}

state_save() {
  local tmp="$STATE.tmp.$$" k
  (
    umask 077
    for k in "${!ST[@]}"; do printf '%s=%s\n' "$k" "${ST[$k]}"; done | sort >"$tmp"
  )
  mv -f "$tmp" "$STATE"
}

gen_password() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }

# ---------------------------------------------------------------------------------------------
# helpers: processes, ports, packages
# ---------------------------------------------------------------------------------------------

pid_alive() { [[ $1 =~ ^[0-9]+$ ]] && kill -0 "$1" 2>/dev/null; }

# wait_gone PID SECONDS: 0 once the process is gone.
wait_gone() {
  local pid=$1 i
  for ((i = 0; i < $2 * 10; i++)); do pid_alive "$pid" || return 0; sleep 0.1; done
  ! pid_alive "$pid"
}

# shellcheck disable=SC2016 # $1 expands in the inner bash
tcp_open() { timeout 2 bash -c 'exec 7<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null; }

port_busy() {
  if command -v ss >/dev/null 2>&1; then
    [[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]] && return 0
  fi
  tcp_open "$1"
}

# Ports recorded by the other stacks of this checkout (running or not).
other_stack_ports() {
  local f
  for f in "$STACKS"/*/state; do
    [[ -f $f && $f != "$STATE" ]] || continue
    sed -n 's/^[A-Z_]*_PORT=\([0-9][0-9]*\)$/\1/p' "$f"
  done
}

# pick_port: a random free port no stack of this checkout (this one included) has recorded.
pick_port() {
  local taken p i k
  taken=" $(other_stack_ports | tr '\n' ' ') "
  for k in "${PORT_KEYS[@]}"; do taken+="${ST[$k]:-} "; done
  for ((i = 0; i < 500; i++)); do
    p=$((PORT_MIN + (((RANDOM << 15) | RANDOM) % (PORT_MAX - PORT_MIN + 1))))
    [[ $taken == *" $p "* ]] && continue
    port_busy "$p" && continue
    echo "$p"
    return 0
  done
  die "found no free port in $PORT_MIN-$PORT_MAX"
}

apt_install() {
  if (( EUID != 0 )); then
    die "missing $*: install it with: sudo apt-get update && sudo apt-get install -y $*"
  fi
  command -v apt-get >/dev/null 2>&1 || die "missing $* and there is no apt-get here: install it by hand"
  export DEBIAN_FRONTEND=noninteractive
  lock 8 apt.lock
  if (( ! APT_UPDATED )); then
    log "apt-get update"
    apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
    APT_UPDATED=1
  fi
  log "apt-get install -y $*"
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$@" >&2
  unlock 8
}

tail_log() {
  if [[ -f $1 ]]; then
    printf -- '---- last lines of %s ----\n' "$1" >&2
    tail -n "${2:-40}" "$1" >&2
    printf -- '----\n' >&2
  fi
}

# ---------------------------------------------------------------------------------------------
# services (one database each)
# ---------------------------------------------------------------------------------------------

load_services() {
  local raw=() s d
  if [[ -n ${SPINE_STACK_SERVICES:-} ]]; then
    read -r -a raw <<<"${SPINE_STACK_SERVICES//,/ }"
  elif [[ -d $ROOT/migrations ]]; then
    for d in "$ROOT"/migrations/*/; do
      [[ -d $d ]] || continue
      d=${d%/}
      raw+=("${d##*/}")
    done
  fi
  ((${#raw[@]})) || raw=(tenants)
  SERVICES=()
  for s in "${raw[@]}"; do
    if [[ ! $s =~ ^[a-z][a-z0-9_]{0,40}$ || $s == postgres || $s == template0 || $s == template1 ]]; then
      log "warning: skipping service '$s' (name must match ^[a-z][a-z0-9_]*\$ and not be a system database)"
      continue
    fi
    [[ " ${SERVICES[*]-} " == *" $s "* ]] || SERVICES+=("$s")
  done
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------------

pg_find_bin() {
  local want="" d
  if [[ -n ${SPINE_PG_BIN:-} ]]; then
    PGBIN=$SPINE_PG_BIN
  else
    [[ -f $PGDATA/PG_VERSION ]] && want=$(<"$PGDATA/PG_VERSION")
    if [[ -n $want ]]; then
      PGBIN=/usr/lib/postgresql/$want/bin
      [[ -x $PGBIN/postgres ]] || die "$PGDATA holds PostgreSQL $want data, but $PGBIN is not installed (install postgresql-$want, or run: scripts/stack.sh down --name $NAME --purge)"
    else
      d=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
      if [[ -z $d || ! -x $d/initdb ]]; then
        apt_install postgresql
        d=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
      fi
      PGBIN=$d
    fi
  fi
  for d in postgres initdb pg_ctl pg_isready psql; do
    [[ -x $PGBIN/$d ]] || die "no $d in $PGBIN"
  done
}

pg_ensure_os_user() {
  if (( EUID != 0 )); then
    PG_OS_USER=$(id -un)
    return
  fi
  PG_OS_USER=$PG_OS_USER_ROOT
  if ! id -u "$PG_OS_USER" >/dev/null 2>&1; then
    log "creating system user $PG_OS_USER (initdb refuses to run as root)"
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
      --user-group "$PG_OS_USER" || id -u "$PG_OS_USER" >/dev/null 2>&1 || die "useradd $PG_OS_USER failed"
  fi
}

# as_pg CMD...: run as the PostgreSQL OS user, from the stack dir, with no lock/stdout fds held.
as_pg() {
  if (( EUID == 0 )); then
    (cd "$SD" && exec runuser -u "$PG_OS_USER" -- "$@") 3>&- 8>&- 9>&-
  else
    (cd "$SD" && exec "$@") 3>&- 8>&- 9>&-
  fi
}

# pg_pid: the postmaster's pid if this stack's server runs (its cwd is the data dir).
pg_pid() {
  local pid
  [[ -f $PGDATA/postmaster.pid ]] || return 1
  pid=$(head -n 1 "$PGDATA/postmaster.pid" 2>/dev/null || true)
  pid_alive "$pid" || return 1
  [[ $(readlink "/proc/$pid/cwd" 2>/dev/null) == "$PGDATA" ]] || return 1
  echo "$pid"
}

psql_admin() { # psql_admin DB  (SQL on stdin)
  PGPASSWORD=${ST[PG_ADMIN_PASSWORD]} PGCONNECT_TIMEOUT=10 \
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "${ST[PG_PORT]}" -U "$PG_ADMIN_USER" -d "$1" >&2
}

pg_init() {
  [[ -f $PGDATA/PG_VERSION ]] && return 0
  local pwfile="$SD/.initdb-pw"
  log "initdb $PGDATA ($("$PGBIN/postgres" --version))"
  rm -rf "$PGDATA"
  mkdir -p "$PGDATA"
  chmod 700 "$PGDATA"
  (umask 077; printf '%s\n' "${ST[PG_ADMIN_PASSWORD]}" >"$pwfile")
  if (( EUID == 0 )); then chown "$PG_OS_USER:" "$PGDATA" "$pwfile"; fi
  if ! as_pg "$PGBIN/initdb" -D "$PGDATA" -U "$PG_ADMIN_USER" --pwfile="$pwfile" -E UTF8 --no-locale \
      --auth-local=scram-sha-256 --auth-host=scram-sha-256 >"$SD/initdb.log" 2>&1; then
    rm -f "$pwfile"
    tail_log "$SD/initdb.log"
    rm -rf "$PGDATA"
    die "initdb failed"
  fi
  rm -f "$pwfile"
  printf "\n# settings of scripts/stack.sh\ninclude_if_exists = 'spine.conf'\n" >>"$PGDATA/postgresql.conf"
}

pg_write_conf() { # writes $PGDATA/spine.conf; returns 0 if it changed
  local new old=""
  new="# written by scripts/stack.sh on every 'up'; edits are lost
listen_addresses = '127.0.0.1'
port = ${ST[PG_PORT]}
unix_socket_directories = '$PGSOCK'
unix_socket_permissions = 0777
max_connections = 200
password_encryption = 'scram-sha-256'
logging_collector = off
log_min_messages = warning"
  if (( FAST )); then
    new+="
fsync = off
synchronous_commit = off
full_page_writes = off"
  fi
  [[ -f $PGDATA/spine.conf ]] && old=$(<"$PGDATA/spine.conf")
  [[ $new == "$old" ]] && return 1
  printf '%s\n' "$new" >"$PGDATA/spine.conf"
  if (( EUID == 0 )); then chown "$PG_OS_USER:" "$PGDATA/spine.conf"; fi
  return 0
}

pg_wait_ready() {
  local i
  for ((i = 0; i < TIMEOUT * 2; i++)); do
    "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "${ST[PG_PORT]}" -t 2 && return 0
    sleep 0.5
  done
  tail_log "$SD/postgres.log"
  die "PostgreSQL did not become ready on 127.0.0.1:${ST[PG_PORT]} within ${TIMEOUT}s"
}

pg_start() {
  local pid changed=0
  pg_init
  mkdir -p "$PGSOCK"
  touch "$SD/postgres.log"
  if (( EUID == 0 )); then
    chown "$PG_OS_USER:" "$PGSOCK" "$SD/postgres.log"
    # initdb/pg_ctl run as $PG_OS_USER and must reach the stack dir.
    runuser -u "$PG_OS_USER" -- test -x "$SD" -a -w "$PGSOCK" ||
      die "user $PG_OS_USER cannot reach $SD: every parent directory needs o+x"
    [[ $(stat -c %U "$PGDATA") == "$PG_OS_USER" ]] || chown -R "$PG_OS_USER:" "$PGDATA"
  fi
  pg_write_conf && changed=1
  if pid=$(pg_pid); then
    if (( changed )); then
      log "PostgreSQL already running (pid $pid); reloading its settings"
      as_pg "$PGBIN/pg_ctl" -D "$PGDATA" reload >/dev/null
    else
      log "PostgreSQL already running (pid $pid)"
    fi
  else
    # Stale lock files (machine restart, crash, kill -9): pg_pid saw no live postmaster of this
    # data dir, and the socket dir is this stack's own, so they can go.
    rm -f "$PGDATA/postmaster.pid" "$PGSOCK"/.s.PGSQL.*
    log "starting PostgreSQL on 127.0.0.1:${ST[PG_PORT]}"
    if ! as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$SD/postgres.log" -w -t "$TIMEOUT" start >/dev/null 2>&1; then
      tail_log "$SD/postgres.log"
      die "PostgreSQL failed to start (log: $SD/postgres.log)"
    fi
  fi
  pg_wait_ready
}

pg_provision() {
  local s sql="" ow ap
  sql+="REVOKE CONNECT, TEMPORARY ON DATABASE postgres FROM PUBLIC;
REVOKE CONNECT, TEMPORARY ON DATABASE template1 FROM PUBLIC;
"
  for s in "${SERVICES[@]}"; do
    ow=${ST[SVC_${s}_OWNER_PASSWORD]}
    ap=${ST[SVC_${s}_APP_PASSWORD]}
    sql+="DO \$\$BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${s}_owner') THEN CREATE ROLE ${s}_owner; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${s}_app') THEN CREATE ROLE ${s}_app; END IF;
END\$\$;
ALTER ROLE ${s}_owner WITH LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB NOBYPASSRLS PASSWORD '${ow}';
ALTER ROLE ${s}_app WITH LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB NOBYPASSRLS PASSWORD '${ap}';
SELECT 'CREATE DATABASE ${s} OWNER ${s}_owner' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '${s}')
\\gexec
ALTER DATABASE ${s} OWNER TO ${s}_owner;
REVOKE ALL ON DATABASE ${s} FROM PUBLIC;
GRANT CONNECT ON DATABASE ${s} TO ${s}_app;
"
  done
  psql_admin postgres <<<"$sql" || die "creating roles and databases failed"
  for s in "${SERVICES[@]}"; do
    psql_admin "$s" <<SQL || die "setting up schema public in database $s failed"
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
ALTER SCHEMA public OWNER TO ${s}_owner;
GRANT USAGE ON SCHEMA public TO ${s}_app;
SQL
  done
}

pg_stop() {
  local pid
  [[ -d $PGDATA ]] || return 0
  pid=$(pg_pid) || { log "PostgreSQL not running"; return 0; }
  pg_find_bin
  pg_ensure_os_user
  log "stopping PostgreSQL (pid $pid)"
  as_pg "$PGBIN/pg_ctl" -D "$PGDATA" stop -m fast -w -t 60 >/dev/null 2>&1 || true
  if ! wait_gone "$pid" 5; then
    kill -INT "$pid" 2>/dev/null || true
    wait_gone "$pid" 20 || kill -QUIT "$pid" 2>/dev/null || true
  fi
}

# ---------------------------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------------------------

redis_ensure_installed() {
  if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    apt_install redis-server redis-tools
  fi
}

# redis_pid: the pid if this stack's Redis runs (its cwd is .stack/N/redis).
redis_pid() {
  local pid
  [[ -f $SD/redis.pid ]] || return 1
  pid=$(head -n 1 "$SD/redis.pid" 2>/dev/null || true)
  pid_alive "$pid" || return 1
  [[ $(readlink "/proc/$pid/cwd" 2>/dev/null) == "$SD/redis" ]] || return 1
  echo "$pid"
}

redis_ping() { [[ $(timeout 3 redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null) == PONG ]]; }

redis_start() {
  local pid i
  if pid=$(redis_pid); then
    log "Redis already running (pid $pid)"
  else
    rm -f "$SD/redis.pid"
    mkdir -p "$SD/redis"
    cat >"$SD/redis.conf" <<CONF
# written by scripts/stack.sh on every start; a private instance, not the system service
bind 127.0.0.1
port ${ST[REDIS_PORT]}
protected-mode yes
daemonize yes
pidfile "$SD/redis.pid"
logfile "$SD/redis.log"
dir "$SD/redis"
save ""
appendonly no
databases 16
CONF
    log "starting Redis on 127.0.0.1:${ST[REDIS_PORT]}"
    if ! redis-server "$SD/redis.conf" </dev/null >/dev/null 2>>"$SD/redis.log" 3>&- 8>&- 9>&-; then
      tail_log "$SD/redis.log"
      die "redis-server failed to start"
    fi
  fi
  for ((i = 0; i < TIMEOUT * 2; i++)); do
    redis_ping "${ST[REDIS_PORT]}" && return 0
    sleep 0.5
  done
  tail_log "$SD/redis.log"
  die "Redis did not answer PING on 127.0.0.1:${ST[REDIS_PORT]} within ${TIMEOUT}s"
}

redis_stop() {
  local pid
  pid=$(redis_pid) || { log "Redis not running"; rm -f "$SD/redis.pid"; return 0; }
  log "stopping Redis (pid $pid)"
  if [[ -n ${ST[REDIS_PORT]:-} ]] && command -v redis-cli >/dev/null 2>&1; then
    timeout 10 redis-cli -h 127.0.0.1 -p "${ST[REDIS_PORT]}" shutdown nosave >/dev/null 2>&1 || true
  fi
  if ! wait_gone "$pid" 10; then
    kill -TERM "$pid" 2>/dev/null || true
    wait_gone "$pid" 10 || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$SD/redis.pid"
}

# ---------------------------------------------------------------------------------------------
# Azurite (blob, queue, table), pinned in package.json / package-lock.json
# ---------------------------------------------------------------------------------------------

azurite_ensure_installed() {
  local bin="$ROOT/node_modules/.bin/azurite"
  [[ -f $ROOT/package-lock.json ]] || die "no package-lock.json at $ROOT (Azurite is pinned there)"
  lock 8 npm.lock # stacks started at the same time share node_modules/
  # npm writes node_modules/.package-lock.json last; a lock file newer than it means a stale install.
  if [[ ! -x $bin || ! -f $ROOT/node_modules/.package-lock.json ||
        $ROOT/package-lock.json -nt $ROOT/node_modules/.package-lock.json ]]; then
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
      apt_install nodejs npm
    fi
    log "npm ci (Azurite $(sed -n 's/.*"azurite": *"\([^"]*\)".*/\1/p' "$ROOT/package.json" | head -n 1))"
    (cd "$ROOT" && npm ci --no-audit --no-fund --engine-strict=false --loglevel=error </dev/null >&2) 8>&- ||
      die "npm ci failed"
    [[ -x $bin ]] || die "npm ci did not install $bin"
  fi
  unlock 8
}

# azurite_pid: the pid if this stack's Azurite runs (its command line names this stack's location).
azurite_pid() {
  local pid
  [[ -f $SD/azurite.pid ]] || return 1
  pid=$(head -n 1 "$SD/azurite.pid" 2>/dev/null || true)
  pid_alive "$pid" || return 1
  [[ $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) == *"--location $SD/azurite "* ]] || return 1
  echo "$pid"
}

azurite_start() {
  local pid="" i p ok
  if pid=$(azurite_pid); then
    log "Azurite already running (pid $pid)"
  else
    rm -f "$SD/azurite.pid"
    mkdir -p "$SD/azurite"
    log "starting Azurite (blob ${ST[BLOB_PORT]}, queue ${ST[QUEUE_PORT]}, table ${ST[TABLE_PORT]})"
    printf -- '---- %s azurite start ----\n' "$(date -u +%FT%TZ)" >>"$SD/azurite.log"
    # setsid: its own session, so it outlives the calling shell/make; the inner bash writes its
    # own pid and then becomes azurite (exec), so the pid file names the azurite process.
    (
      cd "$SD"
      # shellcheck disable=SC2016 # $$, $0 and $@ are the inner bash's
      exec setsid bash -c 'echo $$ >"$0"; exec "$@"' "$SD/azurite.pid" \
        "$ROOT/node_modules/.bin/azurite" --location "$SD/azurite" \
        --blobHost 127.0.0.1 --blobPort "${ST[BLOB_PORT]}" \
        --queueHost 127.0.0.1 --queuePort "${ST[QUEUE_PORT]}" \
        --tableHost 127.0.0.1 --tablePort "${ST[TABLE_PORT]}" \
        --skipApiVersionCheck --loose --silent
    ) </dev/null >>"$SD/azurite.log" 2>&1 3>&- 8>&- 9>&- &
    for ((i = 0; i < 50; i++)); do
      [[ -s $SD/azurite.pid ]] && break
      sleep 0.1
    done
    pid=$(head -n 1 "$SD/azurite.pid" 2>/dev/null || true)
  fi
  for ((i = 0; i < TIMEOUT * 4; i++)); do
    ok=1
    for p in "${ST[BLOB_PORT]}" "${ST[QUEUE_PORT]}" "${ST[TABLE_PORT]}"; do
      tcp_open "$p" || { ok=0; break; }
    done
    (( ok )) && return 0
    if ! pid_alive "$pid"; then
      tail_log "$SD/azurite.log"
      die "Azurite exited during start-up (log: $SD/azurite.log)"
    fi
    sleep 0.25
  done
  tail_log "$SD/azurite.log"
  die "Azurite did not listen on 127.0.0.1:${ST[BLOB_PORT]}/${ST[QUEUE_PORT]}/${ST[TABLE_PORT]} within ${TIMEOUT}s"
}

azurite_stop() {
  local pid
  pid=$(azurite_pid) || { log "Azurite not running"; rm -f "$SD/azurite.pid"; return 0; }
  log "stopping Azurite (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  wait_gone "$pid" 15 || kill -KILL "$pid" 2>/dev/null || true
  wait_gone "$pid" 5 || true
  rm -f "$SD/azurite.pid"
}

# ---------------------------------------------------------------------------------------------
# env file and summary
# ---------------------------------------------------------------------------------------------

env_line() { local v=$2; printf "export %s='%s'\n" "$1" "${v//\'/\'\\\'\'}"; }

write_env() {
  local tmp="$ENVFILE.tmp.$$" s S pg="127.0.0.1:${ST[PG_PORT]}" conn
  conn="DefaultEndpointsProtocol=http;AccountName=$AZ_ACCOUNT;AccountKey=$AZ_KEY"
  conn+=";BlobEndpoint=http://127.0.0.1:${ST[BLOB_PORT]}/$AZ_ACCOUNT"
  conn+=";QueueEndpoint=http://127.0.0.1:${ST[QUEUE_PORT]}/$AZ_ACCOUNT"
  conn+=";TableEndpoint=http://127.0.0.1:${ST[TABLE_PORT]}/$AZ_ACCOUNT;"
  {
    echo "# written by scripts/stack.sh up --name $NAME; source it: . $ENVFILE"
    env_line SPINE_STACK_NAME "$NAME"
    env_line SPINE_STACK_DIR "$SD"
    env_line SPINE_DB_SERVICES "${SERVICES[*]}"
    env_line SPINE_PG_HOST 127.0.0.1
    env_line SPINE_PG_PORT "${ST[PG_PORT]}"
    env_line SPINE_PG_ADMIN_USER "$PG_ADMIN_USER"
    env_line SPINE_PG_ADMIN_PASSWORD "${ST[PG_ADMIN_PASSWORD]}"
    env_line SPINE_PG_ADMIN_URL "postgres://$PG_ADMIN_USER:${ST[PG_ADMIN_PASSWORD]}@$pg/postgres?sslmode=disable"
    for s in "${SERVICES[@]}"; do
      S=${s^^}
      env_line "SPINE_${S}_DB_DIALECT" postgres
      env_line "SPINE_${S}_DB_URL" "postgres://${s}_app:${ST[SVC_${s}_APP_PASSWORD]}@$pg/$s?sslmode=disable"
      env_line "SPINE_${S}_DB_MIGRATE_URL" "postgres://${s}_owner:${ST[SVC_${s}_OWNER_PASSWORD]}@$pg/$s?sslmode=disable"
      env_line "SPINE_${S}_DB_OWNER_PASSWORD" "${ST[SVC_${s}_OWNER_PASSWORD]}"
      env_line "SPINE_${S}_DB_APP_PASSWORD" "${ST[SVC_${s}_APP_PASSWORD]}"
    done
    env_line SPINE_REDIS_HOST 127.0.0.1
    env_line SPINE_REDIS_PORT "${ST[REDIS_PORT]}"
    env_line SPINE_REDIS_URL "redis://127.0.0.1:${ST[REDIS_PORT]}/0"
    env_line SPINE_STORAGE_CONNECTION_STRING "$conn"
    env_line SPINE_STORAGE_ACCOUNT_NAME "$AZ_ACCOUNT"
    env_line SPINE_STORAGE_ACCOUNT_KEY "$AZ_KEY"
    env_line SPINE_STORAGE_BLOB_PORT "${ST[BLOB_PORT]}"
    env_line SPINE_STORAGE_QUEUE_PORT "${ST[QUEUE_PORT]}"
    env_line SPINE_STORAGE_TABLE_PORT "${ST[TABLE_PORT]}"
  } >"$tmp"
  chmod 600 "$tmp"
  mv -f "$tmp" "$ENVFILE"
}

summary() {
  local mode=""
  (( FAST )) && mode=" (fast: fsync off)"
  {
    echo "stack '$NAME' is up in $SD"
    printf '  postgres  127.0.0.1:%s  %s%s  superuser %s  databases: %s\n' "${ST[PG_PORT]}" \
      "$("$PGBIN/postgres" --version | awk '{print $3}')" "$mode" "$PG_ADMIN_USER" "${SERVICES[*]}"
    printf '  redis     127.0.0.1:%s\n' "${ST[REDIS_PORT]}"
    printf '  azurite   blob 127.0.0.1:%s  queue 127.0.0.1:%s  table 127.0.0.1:%s\n' \
      "${ST[BLOB_PORT]}" "${ST[QUEUE_PORT]}" "${ST[TABLE_PORT]}"
    printf '  env       . %s\n' "$ENVFILE"
    printf '  stop      scripts/stack.sh down --name %s [--purge]\n' "$NAME"
  } >&2
}

# ---------------------------------------------------------------------------------------------
# subcommands
# ---------------------------------------------------------------------------------------------

cmd_up() {
  exec 3>&1 1>&2 # stdout is for the env file's path only
  mkdir -p "$STACKS"
  lock 9 "stack-$NAME.lock"
  mkdir -p "$SD"
  chmod 711 "$SD"
  load_services

  redis_ensure_installed
  azurite_ensure_installed
  pg_find_bin

  # Ports, passwords and the OS user: under the checkout-wide lock, so that stacks started at the
  # same time never pick the same port.
  lock 8 ports.lock
  state_load
  pg_ensure_os_user
  local k s running
  if [[ -f $PGDATA/PG_VERSION && -z ${ST[PG_ADMIN_PASSWORD]:-} ]]; then
    die "$PGDATA exists but $STATE lost its admin password: run scripts/stack.sh down --name $NAME --purge"
  fi
  [[ -n ${ST[PG_ADMIN_PASSWORD]:-} ]] || ST[PG_ADMIN_PASSWORD]=$(gen_password)
  for s in "${SERVICES[@]}"; do
    [[ -n ${ST[SVC_${s}_OWNER_PASSWORD]:-} ]] || ST[SVC_${s}_OWNER_PASSWORD]=$(gen_password)
    [[ -n ${ST[SVC_${s}_APP_PASSWORD]:-} ]] || ST[SVC_${s}_APP_PASSWORD]=$(gen_password)
  done
  for k in "${PORT_KEYS[@]}"; do
    case $k in
      PG_PORT) running=$(pg_pid || true) ;;
      REDIS_PORT) running=$(redis_pid || true) ;;
      *) running=$(azurite_pid || true) ;;
    esac
    [[ -n $running ]] && continue
    if [[ -z ${ST[$k]:-} ]]; then
      ST[$k]=$(pick_port)
    elif port_busy "${ST[$k]}"; then
      local old=${ST[$k]}
      ST[$k]=""
      ST[$k]=$(pick_port)
      log "warning: port $old ($k) is taken by another process; using ${ST[$k]} (URLs change)"
    fi
  done
  state_save
  unlock 8

  pg_start
  pg_provision
  redis_start
  azurite_start
  write_env
  summary
  echo "$ENVFILE" >&3
}

cmd_down() {
  lock 9 "stack-$NAME.lock"
  if [[ -d $SD ]]; then
    state_load
    azurite_stop
    redis_stop
    pg_stop
  else
    log "no stack at $SD"
  fi
  if (( PURGE )); then
    log "purging $SD"
    rm -rf "$SD"
    [[ $PGSOCK == "$SD/pgsock" ]] || rm -rf "$PGSOCK"
  fi
  log "down"
}

cmd_env() {
  if [[ ! -f $ENVFILE ]]; then
    log "no env file: run scripts/stack.sh up --name $NAME"
    exit 1
  fi
  echo "$ENVFILE"
}

cmd_status() {
  local pid n=0
  if [[ ! -d $SD ]]; then
    log "no stack at $SD"
    exit 3
  fi
  state_load
  echo "stack '$NAME' in $SD"
  if pid=$(pg_pid); then
    echo "  postgres  running  pid $pid  127.0.0.1:${ST[PG_PORT]:-?}"; n=$((n + 1))
  else
    echo "  postgres  stopped  (port ${ST[PG_PORT]:-?})"
  fi
  if pid=$(redis_pid); then
    echo "  redis     running  pid $pid  127.0.0.1:${ST[REDIS_PORT]:-?}"; n=$((n + 1))
  else
    echo "  redis     stopped  (port ${ST[REDIS_PORT]:-?})"
  fi
  if pid=$(azurite_pid); then
    echo "  azurite   running  pid $pid  blob ${ST[BLOB_PORT]:-?} queue ${ST[QUEUE_PORT]:-?} table ${ST[TABLE_PORT]:-?}"
    n=$((n + 1))
  else
    echo "  azurite   stopped  (blob ${ST[BLOB_PORT]:-?} queue ${ST[QUEUE_PORT]:-?} table ${ST[TABLE_PORT]:-?})"
  fi
  [[ -f $ENVFILE ]] && echo "  env       $ENVFILE"
  (( n == 3 )) || exit 3
}

main() {
  parse_args "$@"
  setup_paths
  case $CMD in
    up) cmd_up ;;
    down) cmd_down ;;
    env) cmd_env ;;
    status) cmd_status ;;
    help|-h|--help) usage ;;
    *) die "unknown subcommand '$CMD' (up, down, env, status)" ;;
  esac
}

main "$@"
