#!/usr/bin/env bash
# scripts/stack.sh — the project's local stack: PostgreSQL, Redis, Azurite and the Key Vault fake,
# started from installed binaries (the fake: this checkout's own handler binary) on free loopback
# ports, kept under .stack/<name>/ of the checkout (git-ignored).
# Stacks with different names (make run: dev, make test: test, make bench: bench) are isolated
# from each other and can run at the same time.
#
# Usage: scripts/stack.sh <subcommand> [--name NAME] [flags]      (NAME defaults to "dev")
#
#   up     [--name N] [--fast]   install what is missing (apt-get as root; npm ci for Azurite), then
#                                start PostgreSQL, Redis, Azurite and the Key Vault fake (`handler
#                                keyvault-fake`, built into .stack/bin/handler with go build when
#                                it is not running), create the per-service roles and
#                                databases, write .stack/N/env. Idempotent: on a running stack it only
#                                creates what is missing. Prints the env file's path on stdout; all
#                                other output (progress, summary) goes to stderr. If it fails, it
#                                stops again whatever it started itself (never a server that was
#                                already running), on every exit path (error, Ctrl-C, TERM).
#                                --fast (tests): PostgreSQL with fsync, synchronous_commit and
#                                full_page_writes off. The flags of the latest `up` win (reloaded;
#                                restarted when a changed setting needs it, e.g. shared_preload_libraries).
#                                PostgreSQL always loads pg_stat_statements (track = all) with
#                                track_io_timing on, and database postgres has the extension: the
#                                statistics `make bench` records (bench/README.md).
#   down   [--name N] [--purge]  stop all four (never fails if already down); --purge also deletes
#                                .stack/N (data, passwords, ports) and PostgreSQL's files wherever
#                                they are (see "Where PostgreSQL's files live").
#   env    [--name N]            print the env file's path (exit 1 if the stack was never brought up):
#                                   . "$(scripts/stack.sh env --name test)"
#   status [--name N]            print what runs where; exit 0 if all four run, 3 otherwise.
#   port   [--name N] KEY        print a loopback port for the app itself (KEY: [a-z][a-z0-9-]*, e.g.
#                                metrics), picked like the stack's own ports, kept in .stack/N/state as
#                                APP_<KEY>_PORT and re-picked when it is no longer bindable.
#                                `make run` takes its SPINE_METRICS_ADDR port from here.
#   free   PORT                  exit 0 if a listener could bind 127.0.0.1:PORT right now, 1 if not.
#   deps                         install what is missing, start nothing (`make deps`): PostgreSQL,
#                                redis-server and redis-tools, Node.js and npm (apt-get), Azurite
#                                (npm ci), and curl and jq (the README's examples use them).
#
# Owning services (one database each): the directory names under migrations/ that hold
# <dialect>/*.sql, read on every `up` (migrations/tenants/ -> service "tenants"; never testdata/ or
# platform: the platform schema, shared/platform, is applied to every service's database by
# `handler migrate`). With no migrations/ folder, or no service folder in it, the
# list falls back to "tenants". SPINE_STACK_SERVICES="tenants audit" (spaces or commas) overrides
# the list. Names must match ^[a-z][a-z0-9_]*$. For each service S PostgreSQL gets:
#   role S_owner (LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB NOBYPASSRLS)  — runs the migrations
#   role S_app   (LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB NOBYPASSRLS)  — the runtime role
#   database S OWNED BY S_owner; REVOKE ALL ON DATABASE S FROM PUBLIC; GRANT CONNECT ... TO S_app;
#   in S: REVOKE CREATE ON SCHEMA public FROM PUBLIC; ALTER SCHEMA public OWNER TO S_owner;
#         GRANT USAGE ON SCHEMA public TO S_app.   (Table grants are the migrations' job: the
#         platform schema's and the service's own.)
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
#   SPINE_KEYVAULT_URL=https://127.0.0.1:PORT, SPINE_KEYVAULT_CA_FILE (the fake's self-signed
#     certificate, .stack/N/keyvault/cert.pem), SPINE_KEYVAULT_PORT
#   SPINE_SMTP_ADDR=127.0.0.1:PORT (the SMTP sink), SPINE_SMTP_PORT
#
# The SMTP sink (handler smtp-sink, shared/mail/smtpsink) accepts every message on 127.0.0.1 (no
# TLS, no authentication) and writes it to .stack/N/smtp/ as an .eml file: e-mail notifications of
# a local run land there.
#
# The Key Vault fake (shared/secrets/kvfake) speaks Key Vault's secrets REST API over TLS with its
# own certificate, accepts any bearer token, and keeps its secrets in .stack/N/keyvault/secrets.json
# (mode 600), so they survive `down` and `up`; `down --purge` deletes them. It is a fake: no RBAC,
# no soft-delete recovery, no HSM.
#
# Ports: random, distinct across all stacks of this checkout, and below the kernel's ephemeral
# range (/proc/sys/net/ipv4/ip_local_port_range, 32768-60999 by default: ports 20000-32767 then),
# so that no client socket of this machine is ever given one of them. "Free" means a real bind
# (SO_REUSEADDR, as PostgreSQL, Redis and Node bind) on 127.0.0.1 succeeds: a port held by any
# socket, a listener or a client in TIME_WAIT, fails it. Ports and passwords (random per stack) are
# kept in .stack/N/state and reused by later `up` calls, so a restarted stack keeps its URLs; a kept
# port that is no longer bindable, or inside the ephemeral range (a stack from before), is replaced
# (with a warning: its URLs change).
#
# Layout of .stack/N/: env, state, pgdir (where PostgreSQL's files live), initdb.log, redis.conf,
# redis/ (dir), redis.pid, redis.log, azurite/ (--location), azurite.pid, azurite.log, keyvault/
# (cert.pem, key.pem, secrets.json), keyvault.pid, keyvault.log, and postgres.log (a link to the
# log in pgdir when that is elsewhere). .stack/bin/handler is the binary the fake runs from.
#
# Where PostgreSQL's files live (pgdata/, pgsock/ (unix socket dir), postgres.log):
#   as another user than root: in .stack/N/ itself; PostgreSQL runs as that user.
#   as root: PostgreSQL must run as an unprivileged system user, spinepg (created if missing;
#     initdb refuses root), which cannot enter a checkout under a folder only root can enter
#     (/root/..., a `mktemp -d` folder). So its files live in /var/lib/spine-stack/<checkout>-<hash
#     of the checkout path>/N/ (owned by spinepg), named in .stack/N/pgdir; `down --purge` (and so
#     `make clean`) deletes them, and `up` deletes those of checkouts that no longer exist.
#   (A path too long for a unix socket moves pgsock/ to /tmp/spine-stack-<cksum>.)
#
# As root, missing packages are installed with apt-get. As another user, a missing package is an
# error that says what to install.
# Azurite is pinned (exact version) in package.json / package-lock.json at the repo root; `up` runs
# `npm ci` when node_modules/.bin/azurite is missing or package-lock.json is newer than the install.
# Azurite 3.37.0 declares node >= 22 but runs on the build machines' Node 20 (blob, queue and table
# checked), so npm ci runs with --engine-strict=false.
# Environment knobs: SPINE_STACK_SERVICES (above), SPINE_STACK_TIMEOUT (readiness wait, seconds,
# default 60), SPINE_PG_BIN (PostgreSQL bin dir; default: the newest /usr/lib/postgresql/*/bin).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
STACKS="$ROOT/.stack"
PORT_MIN="" PORT_MAX="" # port_range
TIMEOUT="${SPINE_STACK_TIMEOUT:-60}"
PG_ADMIN_USER=spine_admin
PG_OS_USER_ROOT=spinepg
PG_HOME=/var/lib/spine-stack # as root: where PostgreSQL's files live (one folder per checkout)
# Azurite's published development account (https://learn.microsoft.com/azure/storage/common/storage-use-azurite).
AZ_ACCOUNT=devstoreaccount1
AZ_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
PORT_KEYS=(PG_PORT REDIS_PORT BLOB_PORT QUEUE_PORT TABLE_PORT KEYVAULT_PORT SMTP_PORT)

# Set by parse_args / setup_paths.
CMD="" NAME=dev FAST=0 PURGE=0
POSARGS=()
SD="" STATE="" ENVFILE="" PGDIR="" PGDATA="" PGSOCK="" PGLOG="" PGBIN="" PG_OS_USER=""
SERVICES=()
declare -A ST=()
APT_UPDATED=0
STARTED=() # what this `up` started itself (pg, redis, azurite, keyvault): stopped again if it fails

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
      -*) die "unknown argument: $1 (see scripts/stack.sh --help)" ;;
      *) POSARGS+=("$1"); shift ;;
    esac
  done
  [[ $NAME =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$ ]] || die "bad --name '$NAME' (letters, digits, . _ -)"
}

setup_paths() {
  SD="$STACKS/$NAME"
  STATE="$SD/state"
  ENVFILE="$SD/env"
  local p=""
  if [[ -f $SD/pgdir ]]; then
    p=$(head -n 1 "$SD/pgdir")
    if [[ $p != "$SD" && $p != "$(pg_home_dir)" ]]; then
      log "warning: ignoring $SD/pgdir ($p): neither $SD nor $(pg_home_dir)"
      p=""
    fi
  fi
  if [[ -z $p ]]; then
    if [[ -d $SD/pgdata ]] || (( EUID != 0 )); then
      p=$SD # not root, or a stack made before PostgreSQL's files moved out of the checkout
    else
      p=$(pg_home_dir)
    fi
  fi
  PGDIR=$p
  PGDATA="$PGDIR/pgdata"
  PGSOCK="$PGDIR/pgsock"
  PGLOG="$PGDIR/postgres.log"
  # A unix socket path is limited to ~107 bytes; fall back to a short per-stack dir under /tmp.
  if (( ${#PGSOCK} + 20 > 100 )); then
    PGSOCK="/tmp/spine-stack-$(printf '%s' "$PGDIR" | cksum | cut -d' ' -f1)"
  fi
}

# checkout_key: this checkout's folder name under $PG_HOME: its base name and a hash of its path.
checkout_key() {
  local base=${ROOT##*/} h
  base=${base//[^A-Za-z0-9._-]/_}
  h=$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)
  printf '%s-%s\n' "${base:0:24}" "$h"
}

pg_home_dir() { printf '%s/%s/%s\n' "$PG_HOME" "$(checkout_key)" "$NAME"; }

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

# bindable PORT...: print each port a listener could bind on 127.0.0.1 right now. A real bind,
# with SO_REUSEADDR as PostgreSQL, Redis, Node and Go bind theirs: any socket on the port, a
# listener or a client connection (TIME_WAIT included), makes it fail with EADDRINUSE, as it
# would make the server fail. Perl's Socket module is part of perl-base (always there on Debian).
bindable() {
  command -v perl >/dev/null 2>&1 || die "perl is needed to check ports (Debian: perl-base)"
  perl -MSocket -e '
    for my $p (@ARGV) {
      socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!\n";
      setsockopt($s, SOL_SOCKET, SO_REUSEADDR, 1) or die "setsockopt: $!\n";
      print "$p\n" if bind($s, pack_sockaddr_in($p, inet_aton("127.0.0.1"))) && listen($s, 1);
      close($s);
    }' "$@"
}

port_free() { [[ $1 =~ ^[0-9]+$ ]] && (( $1 >= 1 && $1 <= 65535 )) && [[ -n $(bindable "$1") ]]; }

# kept_port_problem PORT: why a kept port must be replaced (nothing if it may stay): inside the
# ephemeral range (kept from before the range moved below it) or not bindable.
kept_port_problem() {
  [[ -n $PORT_MIN ]] || port_range
  if (( $1 < PORT_MIN || $1 > PORT_MAX )); then
    echo "is outside $PORT_MIN-$PORT_MAX (below the kernel's ephemeral range)"
  elif ! port_free "$1"; then
    echo "is no longer bindable (another process holds it)"
  fi
}

# port_range: sets PORT_MIN..PORT_MAX below the kernel's ephemeral port range, from which the
# kernel picks every client socket's local port (a server on such a port can find it taken by an
# outgoing connection, or by one in TIME_WAIT, at any time).
port_range() {
  local lo=32768 hi=60999 r
  if r=$(cat /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null) && [[ $r =~ ^[[:space:]]*([0-9]+)[[:space:]]+([0-9]+) ]]; then
    lo=${BASH_REMATCH[1]} hi=${BASH_REMATCH[2]}
  fi
  if (( lo > 21000 )); then
    PORT_MIN=20000 PORT_MAX=$((lo - 1))
  elif (( lo > 3024 )); then
    PORT_MIN=1024 PORT_MAX=$((lo - 1))
  elif (( hi < 63535 )); then
    PORT_MIN=$((hi + 1)) PORT_MAX=65535
  else
    die "the ephemeral port range $lo-$hi (/proc/sys/net/ipv4/ip_local_port_range) leaves no room for servers"
  fi
}

# Ports recorded by the other stacks of this checkout (running or not).
other_stack_ports() {
  local f
  for f in "$STACKS"/*/state; do
    [[ -f $f && $f != "$STATE" ]] || continue
    sed -n 's/^[A-Z_]*_PORT=\([0-9][0-9]*\)$/\1/p' "$f"
  done
}

# pick_port: a random bindable port below the ephemeral range that no stack of this checkout
# (this one included) has recorded. Candidates are checked 20 at a time (one perl each).
pick_port() {
  local taken p i k cand=() ok
  [[ -n $PORT_MIN ]] || port_range
  taken=" $(other_stack_ports | tr '\n' ' ') "
  for k in "${!ST[@]}"; do
    [[ $k == *_PORT ]] && taken+="${ST[$k]} "
  done
  for ((i = 0; i < 25; i++)); do
    cand=()
    while ((${#cand[@]} < 20)); do
      p=$((PORT_MIN + (((RANDOM << 15) | RANDOM) % (PORT_MAX - PORT_MIN + 1))))
      [[ $taken == *" $p "* || " ${cand[*]-} " == *" $p "* ]] || cand+=("$p")
    done
    ok=$(bindable "${cand[@]}" | head -n 1)
    if [[ -n $ok ]]; then
      echo "$ok"
      return 0
    fi
  done
  die "found no bindable port in $PORT_MIN-$PORT_MAX"
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

# die_port_taken LOG OFFSET PORT: if LOG, from byte OFFSET on, shows a failed bind, die saying so.
# (Ports are checked bindable just before; only a process binding one in between gets here.)
die_port_taken() {
  if tail -c +"$(($2 + 1))" "$1" 2>/dev/null | grep -qiE 'address already in use|EADDRINUSE'; then
    die "port $3 was taken by another process after it was checked: run the same command again (a taken port is replaced)"
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
    # A service is a folder with <dialect>/*.sql, as the binary embeds them (migrations/*/*/*.sql)
    # and infra/ counts them; testdata (test fixtures) and platform (the platform schema's name,
    # whose SQL lives in shared/platform) never are.
    for d in "$ROOT"/migrations/*/; do
      [[ -d $d ]] || continue
      d=${d%/}
      case ${d##*/} in testdata | platform) continue ;; esac
      compgen -G "$d/*/*.sql" >/dev/null || continue
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

# as_pg CMD...: run as the PostgreSQL OS user, from PostgreSQL's folder, with no lock/stdout fds held.
as_pg() {
  if (( EUID == 0 )); then
    (cd "$PGDIR" && exec runuser -u "$PG_OS_USER" -- "$@") 3>&- 8>&- 9>&-
  else
    (cd "$PGDIR" && exec "$@") 3>&- 8>&- 9>&-
  fi
}

# pg_prepare_dir: create PostgreSQL's folder where its OS user can reach it, and point .stack/N/pgdir
# at it. As root outside the checkout (see the header), with a note of the checkout it belongs to.
pg_prepare_dir() {
  if [[ $PGDIR != "$SD" ]]; then
    local kd=${PGDIR%/*}
    mkdir -p "$kd"
    chmod 755 "$PG_HOME" "$kd"
    [[ -f $kd/checkout ]] || printf '%s\n' "$ROOT" >"$kd/checkout"
    mkdir -p "$PGDIR"
    chown "$PG_OS_USER:" "$PGDIR"
    chmod 711 "$PGDIR"
    ln -sfn "$PGLOG" "$SD/postgres.log"
  fi
  printf '%s\n' "$PGDIR" >"$SD/pgdir"
}

# pg_home_gc: as root, delete the PostgreSQL folders of checkouts that no longer exist (a removed
# `mktemp -d` clone), unless a server still runs in one of them.
pg_home_gc() {
  (( EUID == 0 )) && [[ -d $PG_HOME ]] || return 0
  local d co f pid busy
  for d in "$PG_HOME"/*/; do
    d=${d%/}
    [[ -f $d/checkout ]] || continue
    co=$(head -n 1 "$d/checkout")
    [[ $co == /* && ! -e $co ]] || continue
    busy=0
    for f in "$d"/*/pgdata/postmaster.pid; do
      [[ -f $f ]] || continue
      pid=$(head -n 1 "$f" 2>/dev/null || true)
      if pid_alive "$pid" && [[ $(readlink "/proc/$pid/cwd" 2>/dev/null) == "${f%/postmaster.pid}" ]]; then busy=1; fi
    done
    if (( busy )); then
      log "note: $d belongs to $co, which no longer exists, but its PostgreSQL still runs; left alone"
      continue
    fi
    log "removing $d (PostgreSQL files of $co, which no longer exists)"
    rm -rf "$d"
  done
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
  local pwfile="$PGDIR/.initdb-pw"
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
  if pg_has_stat_statements; then
    # PostgreSQL's own statistics, read by the bench (bench/pgstats.go): per-statement counts and
    # times (track = all: statements run inside functions and triggers count too, flagged
    # toplevel = false, so the bench can tell round trips from nested work), and I/O timings in
    # them and in EXPLAIN (ANALYZE, BUFFERS). compute_query_id stays 'auto': the module turns it on.
    new+="
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
track_io_timing = on"
  fi
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

# pg_has_stat_statements: the server's library dir holds pg_stat_statements (the Debian server
# package, postgresql-N, ships it; a hand-built SPINE_PG_BIN may not, and preloading a missing
# library would keep the server from starting).
pg_has_stat_statements() {
  local lib=${PGBIN%/bin}/lib
  [[ -x $PGBIN/pg_config ]] && lib=$("$PGBIN/pg_config" --pkglibdir 2>/dev/null || echo "$lib")
  [[ -f $lib/pg_stat_statements.so ]]
}

# pg_restart_if_pending: after a reload, restart the server if a setting it read only at start
# changed (pg_settings.pending_restart; shared_preload_libraries on a stack started before it was
# set), so the settings written are the settings in force.
pg_restart_if_pending() {
  local pending
  pending=$(PGPASSWORD=${ST[PG_ADMIN_PASSWORD]} PGCONNECT_TIMEOUT=10 "$PGBIN/psql" -X -At -h 127.0.0.1 \
    -p "${ST[PG_PORT]}" -U "$PG_ADMIN_USER" -d postgres \
    -c "SELECT string_agg(name, ', ') FROM pg_settings WHERE pending_restart" 2>/dev/null) || return 0
  [[ -n $pending ]] || return 0
  log "restarting PostgreSQL: $pending changed and take effect only at start"
  if ! as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGLOG" -w -t "$TIMEOUT" -m fast restart >/dev/null 2>&1; then
    tail_log "$PGLOG"
    die "PostgreSQL failed to restart (log: $PGLOG)"
  fi
}

pg_wait_ready() {
  local i
  for ((i = 0; i < TIMEOUT * 2; i++)); do
    "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "${ST[PG_PORT]}" -t 2 && return 0
    sleep 0.5
  done
  tail_log "$PGLOG"
  die "PostgreSQL did not become ready on 127.0.0.1:${ST[PG_PORT]} within ${TIMEOUT}s"
}

pg_start() {
  local pid changed=0 logsize
  if (( EUID == 0 )); then
    # initdb/pg_ctl run as $PG_OS_USER and must reach PostgreSQL's folder (only a stack made in
    # the checkout before its files moved to $PG_HOME can fail this).
    runuser -u "$PG_OS_USER" -- test -x "$PGDIR" ||
      die "user $PG_OS_USER cannot reach $PGDIR (a parent folder lacks o+x); move this stack's PostgreSQL files to $PG_HOME with: scripts/stack.sh down --name $NAME --purge (deletes its data), then up again"
  fi
  pg_init
  mkdir -p "$PGSOCK"
  touch "$PGLOG"
  if (( EUID == 0 )); then
    chown "$PG_OS_USER:" "$PGSOCK" "$PGLOG"
    runuser -u "$PG_OS_USER" -- test -w "$PGSOCK" || die "user $PG_OS_USER cannot write $PGSOCK"
    [[ $(stat -c %U "$PGDATA") == "$PG_OS_USER" ]] || chown -R "$PG_OS_USER:" "$PGDATA"
  fi
  pg_write_conf && changed=1
  if pid=$(pg_pid); then
    if (( changed )); then
      log "PostgreSQL already running (pid $pid); reloading its settings"
      as_pg "$PGBIN/pg_ctl" -D "$PGDATA" reload >/dev/null
      pg_wait_ready
      pg_restart_if_pending
    else
      log "PostgreSQL already running (pid $pid)"
    fi
  else
    # Stale lock files (machine restart, crash, kill -9): pg_pid saw no live postmaster of this
    # data dir, and the socket dir is this stack's own, so they can go.
    rm -f "$PGDATA/postmaster.pid" "$PGSOCK"/.s.PGSQL.*
    log "starting PostgreSQL on 127.0.0.1:${ST[PG_PORT]}"
    STARTED+=(pg)
    logsize=$(stat -c %s "$PGLOG")
    if ! as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGLOG" -w -t "$TIMEOUT" start >/dev/null 2>&1; then
      tail_log "$PGLOG"
      die_port_taken "$PGLOG" "$logsize" "${ST[PG_PORT]}"
      die "PostgreSQL failed to start (log: $PGLOG)"
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
  # The view the bench reads (as the superuser, from database postgres; it shows every database's
  # statements, with dbid).
  pg_has_stat_statements && sql+="CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
"
  psql_admin postgres <<<"$sql" || die "creating roles and databases failed"
  for s in "${SERVICES[@]}"; do
    psql_admin "$s" <<SQL || die "setting up schema public in database $s failed"
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
ALTER SCHEMA public OWNER TO ${s}_owner;
GRANT USAGE ON SCHEMA public TO ${s}_app;
SQL
  done
}

# pg_await_pid SECONDS: wait until the postmaster this up started has written its pid file (a
# pg_ctl start that timed out, or was interrupted, leaves a server still starting), at most SECONDS.
pg_await_pid() {
  local i
  for ((i = 0; i < $1 * 4; i++)); do
    pg_pid >/dev/null && return 0
    # Nothing of this data dir runs at all (pg_ctl's child, before and after it becomes the
    # postmaster, names the data dir on its command line): no server to wait for.
    pgrep -f -- "$PGDATA" >/dev/null 2>&1 || return 0
    sleep 0.25
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
  local pid i logsize=""
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
    STARTED+=(redis)
    touch "$SD/redis.log"
    logsize=$(stat -c %s "$SD/redis.log")
    if ! redis-server "$SD/redis.conf" </dev/null >/dev/null 2>>"$SD/redis.log" 3>&- 8>&- 9>&-; then
      tail_log "$SD/redis.log"
      die "redis-server failed to start"
    fi
  fi
  for ((i = 0; i < TIMEOUT * 2; i++)); do
    redis_ping "${ST[REDIS_PORT]}" && return 0
    # daemonize: redis-server returned before it bound; a failed bind shows only in its log.
    if [[ -n $logsize ]] && tail -c +"$((logsize + 1))" "$SD/redis.log" | grep -q 'Could not create server TCP listening socket'; then
      tail_log "$SD/redis.log"
      die_port_taken "$SD/redis.log" "$logsize" "${ST[REDIS_PORT]}"
      die "Redis failed to listen on 127.0.0.1:${ST[REDIS_PORT]} (log: $SD/redis.log)"
    fi
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
  local pid="" i p ok logsize=""
  if pid=$(azurite_pid); then
    log "Azurite already running (pid $pid)"
  else
    rm -f "$SD/azurite.pid"
    mkdir -p "$SD/azurite"
    log "starting Azurite (blob ${ST[BLOB_PORT]}, queue ${ST[QUEUE_PORT]}, table ${ST[TABLE_PORT]})"
    STARTED+=(azurite)
    touch "$SD/azurite.log"
    logsize=$(stat -c %s "$SD/azurite.log")
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
      [[ -n $logsize ]] && die_port_taken "$SD/azurite.log" "$logsize" "${ST[BLOB_PORT]}/${ST[QUEUE_PORT]}/${ST[TABLE_PORT]}"
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
# Key Vault fake (handler keyvault-fake, shared/secrets/kvfake)
# ---------------------------------------------------------------------------------------------

# keyvault_pid: the pid if this stack's fake runs (its command line names this stack's folder).
keyvault_pid() {
  local pid
  [[ -f $SD/keyvault.pid ]] || return 1
  pid=$(head -n 1 "$SD/keyvault.pid" 2>/dev/null || true)
  pid_alive "$pid" || return 1
  [[ $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) == *" keyvault-fake "*" --dir $SD/keyvault "* ]] || return 1
  echo "$pid"
}

# keyvault_build: build this checkout's handler into .stack/bin/handler (go build relinks only
# when the sources changed). Stacks of one checkout share the binary, so builds take a lock.
keyvault_build() {
  local go=${GO:-go}
  command -v "$go" >/dev/null 2>&1 || die "Go is needed to build the Key Vault fake (the handler binary): https://go.dev/dl"
  mkdir -p "$STACKS/bin"
  lock 8 build.lock
  log "building .stack/bin/handler (the Key Vault fake runs from it)"
  (cd "$ROOT" && GOFLAGS=-buildvcs=false "$go" build -o "$STACKS/bin/handler" . ) 8>&- 9>&- ||
    die "go build failed: the Key Vault fake runs from this checkout's handler binary"
  unlock 8
}

keyvault_start() {
  local pid="" i logsize=""
  if pid=$(keyvault_pid); then
    log "Key Vault fake already running (pid $pid)"
  else
    rm -f "$SD/keyvault.pid"
    keyvault_build
    mkdir -p "$SD/keyvault"
    chmod 700 "$SD/keyvault"
    log "starting the Key Vault fake on https://127.0.0.1:${ST[KEYVAULT_PORT]}"
    STARTED+=(keyvault)
    touch "$SD/keyvault.log"
    logsize=$(stat -c %s "$SD/keyvault.log")
    (
      cd "$SD"
      # shellcheck disable=SC2016 # $$, $0 and $@ are the inner bash's
      exec setsid bash -c 'echo $$ >"$0"; exec "$@"' "$SD/keyvault.pid" \
        "$STACKS/bin/handler" keyvault-fake --addr "127.0.0.1:${ST[KEYVAULT_PORT]}" --dir "$SD/keyvault"
    ) </dev/null >>"$SD/keyvault.log" 2>&1 3>&- 8>&- 9>&- &
    for ((i = 0; i < 50; i++)); do
      [[ -s $SD/keyvault.pid ]] && break
      sleep 0.1
    done
    pid=$(head -n 1 "$SD/keyvault.pid" 2>/dev/null || true)
  fi
  for ((i = 0; i < TIMEOUT * 4; i++)); do
    tcp_open "${ST[KEYVAULT_PORT]}" && [[ -s $SD/keyvault/cert.pem ]] && return 0
    if ! pid_alive "$pid"; then
      tail_log "$SD/keyvault.log"
      [[ -n $logsize ]] && die_port_taken "$SD/keyvault.log" "$logsize" "${ST[KEYVAULT_PORT]}"
      die "the Key Vault fake exited during start-up (log: $SD/keyvault.log)"
    fi
    sleep 0.25
  done
  tail_log "$SD/keyvault.log"
  die "the Key Vault fake did not listen on 127.0.0.1:${ST[KEYVAULT_PORT]} within ${TIMEOUT}s"
}

keyvault_stop() {
  local pid
  pid=$(keyvault_pid) || { log "Key Vault fake not running"; rm -f "$SD/keyvault.pid"; return 0; }
  log "stopping the Key Vault fake (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  wait_gone "$pid" 10 || kill -KILL "$pid" 2>/dev/null || true
  wait_gone "$pid" 5 || true
  rm -f "$SD/keyvault.pid"
}

# ---------------------------------------------------------------------------------------------
# SMTP sink (handler smtp-sink, shared/mail/smtpsink), run from the binary keyvault_build makes
# ---------------------------------------------------------------------------------------------

# smtp_pid: the pid if this stack's sink runs (its command line names this stack's folder).
smtp_pid() {
  local pid
  [[ -f $SD/smtp.pid ]] || return 1
  pid=$(head -n 1 "$SD/smtp.pid" 2>/dev/null || true)
  pid_alive "$pid" || return 1
  [[ $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) == *" smtp-sink "*" --dir $SD/smtp"* ]] || return 1
  echo "$pid"
}

smtp_start() {
  local pid="" i
  if pid=$(smtp_pid); then
    log "SMTP sink already running (pid $pid)"
    return 0
  fi
  rm -f "$SD/smtp.pid"
  keyvault_build # relinks only when the sources changed, so the sink runs this checkout's handler
  mkdir -p "$SD/smtp"
  chmod 700 "$SD/smtp"
  log "starting the SMTP sink on 127.0.0.1:${ST[SMTP_PORT]} (messages in $SD/smtp)"
  STARTED+=(smtp)
  (
    cd "$SD"
    # shellcheck disable=SC2016 # $$, $0 and $@ are the inner bash's
    exec setsid bash -c 'echo $$ >"$0"; exec "$@"' "$SD/smtp.pid" \
      "$STACKS/bin/handler" smtp-sink --addr "127.0.0.1:${ST[SMTP_PORT]}" --dir "$SD/smtp"
  ) </dev/null >>"$SD/smtp.log" 2>&1 3>&- 8>&- 9>&- &
  for ((i = 0; i < 50; i++)); do
    [[ -s $SD/smtp.pid ]] && break
    sleep 0.1
  done
  pid=$(head -n 1 "$SD/smtp.pid" 2>/dev/null || true)
  for ((i = 0; i < TIMEOUT * 4; i++)); do
    tcp_open "${ST[SMTP_PORT]}" && return 0
    if ! pid_alive "$pid"; then
      tail_log "$SD/smtp.log"
      die "the SMTP sink exited during start-up (log: $SD/smtp.log)"
    fi
    sleep 0.25
  done
  tail_log "$SD/smtp.log"
  die "the SMTP sink did not listen on 127.0.0.1:${ST[SMTP_PORT]} within ${TIMEOUT}s"
}

smtp_stop() {
  local pid
  pid=$(smtp_pid) || { log "SMTP sink not running"; rm -f "$SD/smtp.pid"; return 0; }
  log "stopping the SMTP sink (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  wait_gone "$pid" 10 || kill -KILL "$pid" 2>/dev/null || true
  wait_gone "$pid" 5 || true
  rm -f "$SD/smtp.pid"
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
    env_line SPINE_KEYVAULT_PORT "${ST[KEYVAULT_PORT]}"
    env_line SPINE_KEYVAULT_URL "https://127.0.0.1:${ST[KEYVAULT_PORT]}"
    env_line SPINE_KEYVAULT_CA_FILE "$SD/keyvault/cert.pem"
    env_line SPINE_SMTP_PORT "${ST[SMTP_PORT]}"
    env_line SPINE_SMTP_ADDR "127.0.0.1:${ST[SMTP_PORT]}"
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
    printf '  keyvault  https://127.0.0.1:%s  (a fake: any token, no RBAC; CA file %s)\n' \
      "${ST[KEYVAULT_PORT]}" "$SD/keyvault/cert.pem"
    printf '  smtp      127.0.0.1:%s  (a sink: messages in %s)\n' "${ST[SMTP_PORT]}" "$SD/smtp"
    [[ $PGDIR == "$SD" ]] || printf '  pg files  %s\n' "$PGDIR"
    printf '  env       . %s\n' "$ENVFILE"
    printf '  stop      scripts/stack.sh down --name %s [--purge]\n' "$NAME"
  } >&2
}

# ---------------------------------------------------------------------------------------------
# subcommands
# ---------------------------------------------------------------------------------------------

# up_cleanup STATUS: the EXIT trap of `up`: when it fails, stop what it started itself.
up_cleanup() {
  (( $1 != 0 && ${#STARTED[@]} )) || return 0
  trap - INT TERM
  log "up failed: stopping what it started (${STARTED[*]})"
  local i
  for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
    case ${STARTED[$i]} in
      pg) pg_await_pid 5; pg_stop || true ;;
      redis) redis_stop || true ;;
      azurite) azurite_stop || true ;;
      keyvault) keyvault_stop || true ;;
      smtp) smtp_stop || true ;;
    esac
  done
}

cmd_up() {
  exec 3>&1 1>&2 # stdout is for the env file's path only
  trap 'up_cleanup $?' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
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
  pg_home_gc
  pg_prepare_dir
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
      KEYVAULT_PORT) running=$(keyvault_pid || true) ;;
      SMTP_PORT) running=$(smtp_pid || true) ;;
      *) running=$(azurite_pid || true) ;;
    esac
    [[ -n $running ]] && continue
    if [[ -z ${ST[$k]:-} ]]; then
      ST[$k]=$(pick_port)
    else
      local old=${ST[$k]} why
      why=$(kept_port_problem "$old")
      if [[ -n $why ]]; then
        unset "ST[$k]"
        ST[$k]=$(pick_port)
        log "warning: port $old ($k) $why; using ${ST[$k]} (URLs change)"
      fi
    fi
  done
  state_save
  unlock 8

  pg_start
  pg_provision
  redis_start
  azurite_start
  keyvault_start
  smtp_start
  write_env
  summary
  echo "$ENVFILE" >&3
}

cmd_down() {
  lock 9 "stack-$NAME.lock"
  if [[ -d $SD ]]; then
    state_load
    smtp_stop
    keyvault_stop
    azurite_stop
    redis_stop
    pg_stop
  else
    log "no stack at $SD"
  fi
  if (( PURGE )); then
    log "purging $SD"
    rm -rf "$SD"
    [[ $PGSOCK == "$PGDIR/pgsock" ]] || rm -rf "$PGSOCK"
    if [[ $PGDIR != "$SD" && -d $PGDIR ]]; then
      log "purging $PGDIR"
      rm -rf "$PGDIR"
      # The checkout's folder goes with its last stack.
      local kd=${PGDIR%/*} left
      left=$(find "$kd" -mindepth 1 -maxdepth 1 ! -name checkout -print -quit 2>/dev/null || true)
      [[ -n $left ]] || rm -rf "$kd"
    fi
  fi
  log "down"
}

cmd_port() {
  [[ ${#POSARGS[@]} -eq 1 && ${POSARGS[0]} =~ ^[a-z][a-z0-9-]{0,20}$ ]] ||
    die "usage: scripts/stack.sh port [--name N] KEY (KEY: [a-z][a-z0-9-]*, e.g. metrics)"
  local key=${POSARGS[0]^^}
  key="APP_${key//-/_}_PORT"
  mkdir -p "$SD"
  chmod 711 "$SD"
  lock 8 ports.lock
  state_load
  local why
  if [[ -n ${ST[$key]:-} ]]; then
    why=$(kept_port_problem "${ST[$key]}")
    if [[ -n $why ]]; then
      log "warning: port ${ST[$key]} (${POSARGS[0]}) $why; picking another"
      unset "ST[$key]"
    fi
  fi
  if [[ -z ${ST[$key]:-} ]]; then
    ST[$key]=$(pick_port)
    state_save
  fi
  unlock 8
  echo "${ST[$key]}"
}

cmd_deps() {
  redis_ensure_installed
  azurite_ensure_installed
  pg_find_bin
  local missing=() t
  for t in curl jq; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
  ((${#missing[@]} == 0)) || apt_install "${missing[@]}"
  log "installed: PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'), $(redis-server --version | awk '{print $1, $2, $3}'), Node.js $(node --version), Azurite $(sed -n 's/.*"azurite": *"\([^"]*\)".*/\1/p' "$ROOT/package.json" | head -n 1), curl, jq"
}

cmd_free() {
  [[ ${#POSARGS[@]} -eq 1 && ${POSARGS[0]} =~ ^[0-9]+$ ]] || die "usage: scripts/stack.sh free PORT"
  port_free "${POSARGS[0]}"
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
  [[ $PGDIR == "$SD" ]] || echo "  (PostgreSQL's files in $PGDIR)"
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
  if pid=$(keyvault_pid); then
    echo "  keyvault  running  pid $pid  https://127.0.0.1:${ST[KEYVAULT_PORT]:-?}"; n=$((n + 1))
  else
    echo "  keyvault  stopped  (port ${ST[KEYVAULT_PORT]:-?})"
  fi
  if pid=$(smtp_pid); then
    echo "  smtp      running  pid $pid  127.0.0.1:${ST[SMTP_PORT]:-?}"; n=$((n + 1))
  else
    echo "  smtp      stopped  (port ${ST[SMTP_PORT]:-?})"
  fi
  [[ -f $ENVFILE ]] && echo "  env       $ENVFILE"
  (( n == 5 )) || exit 3
}

main() {
  parse_args "$@"
  [[ $CMD == port || $CMD == free || ${#POSARGS[@]} -eq 0 ]] || die "unexpected argument: ${POSARGS[0]}"
  setup_paths
  case $CMD in
    up) cmd_up ;;
    down) cmd_down ;;
    env) cmd_env ;;
    status) cmd_status ;;
    port) cmd_port ;;
    free) cmd_free ;;
    deps) cmd_deps ;;
    help|-h|--help) usage ;;
    *) die "unknown subcommand '$CMD' (up, down, env, status, port, free, deps)" ;;
  esac
}

main "$@"
