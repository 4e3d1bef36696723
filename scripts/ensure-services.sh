#!/usr/bin/env bash
# ensure-services.sh - make sure PostgreSQL and Redis are available for
# `make run` / `make test`.
#
# Usage:
#   env=$(scripts/ensure-services.sh) && eval "$env"   # recommended
#   eval "$(scripts/ensure-services.sh)"               # also works
#   scripts/ensure-services.sh stop                    # stop private instances
#
# stdout carries ONLY `export DATABASE_URL=...` / `export REDIS_URL=...`
# lines (and only when both services are available); every human-readable
# message goes to stderr.
#
# For each service, in order:
#   1. DATABASE_URL / REDIS_URL if set and reachable; if unset, the defaults
#      postgres://postgres@127.0.0.1:5432/postgres and redis://127.0.0.1:6379.
#   2. A private instance under <repo>/.data (started or reused), listening on
#      127.0.0.1 only: PostgreSQL on RAPPORT_PG_PORT (55432, trust auth, user
#      postgres), Redis on RAPPORT_REDIS_PORT (56379).
#   3. As root with apt-get: install postgresql / redis-server, then step 2.
#   4. Otherwise: explain what to install and exit non-zero.
#
# Environment:
#   DATABASE_URL, REDIS_URL    services to use if reachable
#   RAPPORT_PG_PORT            private PostgreSQL port (default 55432)
#   RAPPORT_REDIS_PORT         private Redis port (default 56379)
#   RAPPORT_DATA_DIR           private data directory (default <repo>/.data)
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
ROOT_DIR=$(dirname -- "$SCRIPT_DIR")
DATA_DIR=${RAPPORT_DATA_DIR:-$ROOT_DIR/.data}
PG_PORT=${RAPPORT_PG_PORT:-55432}
REDIS_PORT=${RAPPORT_REDIS_PORT:-56379}

DEFAULT_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres
DEFAULT_REDIS_URL=redis://127.0.0.1:6379
PG_SUPERUSER=postgres          # role created by initdb in the private cluster
PG_FALLBACK_OS_USER=rapport-pg # OS user created when root and no `postgres`
CHECK_TIMEOUT=3                # seconds per reachability probe
PG_START_TIMEOUT=60            # seconds
REDIS_START_TIMEOUT=15         # seconds
STOP_TIMEOUT=30                # seconds

OUT_DATABASE_URL=
OUT_REDIS_URL=
MISSING=()
APT_UPDATED=
PG_USER=   # OS user to run PostgreSQL tools as ('' = current user)

# ---------------------------------------------------------------- helpers ---

log() { printf 'ensure-services: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }
is_root() { [ "$(id -u)" -eq 0 ]; }

usage() {
	cat <<'EOF'
usage: scripts/ensure-services.sh [start|stop]

  start (default)  make PostgreSQL and Redis available; prints only
                   `export DATABASE_URL=...` and `export REDIS_URL=...` on stdout:
                     env=$(scripts/ensure-services.sh) && eval "$env"
  stop             stop the private instances under the data directory

environment: DATABASE_URL, REDIS_URL, RAPPORT_PG_PORT (55432),
             RAPPORT_REDIS_PORT (56379), RAPPORT_DATA_DIR (<repo>/.data)
EOF
}

# Run "$@" with a time limit (if coreutils `timeout` exists).
tmo() {
	local secs=$1
	shift
	if have timeout; then
		timeout "$secs" "$@"
	else
		"$@"
	fi
}

# Hide the password part of a URL in messages.
mask_url() {
	local url=$1
	if [[ $url =~ ^([^:/]+://[^:/@]*):[^@/]*@(.*)$ ]]; then
		printf '%s:***@%s' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
	else
		printf '%s' "$url"
	fi
}

urldecode() { printf '%b' "${1//%/\\x}"; }

# parse_url URL DEFAULT_PORT: sets URL_USER URL_PASS URL_HOST URL_PORT URL_PATH
parse_url() {
	local url=$1 rest hostport userinfo
	URL_USER='' URL_PASS='' URL_HOST='' URL_PORT=$2 URL_PATH=''
	rest=${url#*://}
	if [ "$rest" = "$url" ]; then
		return 1
	fi
	hostport=${rest%%[/?]*}
	URL_PATH=${rest:${#hostport}}
	URL_PATH=${URL_PATH%%\?*}
	if [[ $hostport == *@* ]]; then
		userinfo=${hostport%@*}
		hostport=${hostport##*@}
		URL_USER=$(urldecode "${userinfo%%:*}")
		if [[ $userinfo == *:* ]]; then
			URL_PASS=$(urldecode "${userinfo#*:}")
		fi
	fi
	if [[ $hostport =~ ^\[([^]]*)\](:([0-9]*))?$ ]]; then
		URL_HOST=${BASH_REMATCH[1]}
		if [ -n "${BASH_REMATCH[3]}" ]; then URL_PORT=${BASH_REMATCH[3]}; fi
	elif [[ $hostport == *:* ]]; then
		URL_HOST=${hostport%%:*}
		if [ -n "${hostport#*:}" ]; then URL_PORT=${hostport#*:}; fi
	else
		URL_HOST=$hostport
	fi
	if [ -z "$URL_HOST" ]; then URL_HOST=127.0.0.1; fi
	return 0
}

# Can we open a TCP connection to HOST PORT (bounded)?
tcp_probe() {
	# shellcheck disable=SC2016 # $1/$2 expand in the inner bash
	tmo "$CHECK_TIMEOUT" bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" \
		</dev/null >/dev/null 2>&1
}

pg_reachable() {
	local url=$1 out
	if have psql; then
		out=$(PGCONNECT_TIMEOUT=$CHECK_TIMEOUT tmo $((CHECK_TIMEOUT + 2)) \
			psql -X -w -q -A -t -d "$url" -c 'select 1' </dev/null 2>/dev/null) || return 1
		[ "$out" = 1 ]
	elif have pg_isready; then
		tmo $((CHECK_TIMEOUT + 2)) pg_isready -q -t "$CHECK_TIMEOUT" -d "$url" \
			</dev/null >/dev/null 2>&1
	else
		parse_url "$url" 5432 || return 1
		tcp_probe "$URL_HOST" "$URL_PORT"
	fi
}

# RESP encoding of one command, e.g. resp AUTH user pass
resp() {
	local arg LC_ALL=C # byte lengths
	printf '*%d\r\n' "$#"
	for arg in "$@"; do
		printf '$%d\r\n%s\r\n' "${#arg}" "$arg"
	done
}

redis_reachable() {
	local url=$1 out auth='' args
	parse_url "$url" 6379 || return 1
	if have redis-cli; then
		if [ -z "$URL_PASS" ]; then
			args=(-u "$url")
		else
			# redis-cli -u mishandles redis://:PASSWORD@host (sends AUTH "" PASSWORD),
			# so pass credentials explicitly (password via env, not argv).
			args=(-h "$URL_HOST" -p "$URL_PORT")
			if [ -n "$URL_USER" ]; then args+=(--user "$URL_USER"); fi
			if [[ $url == rediss://* ]]; then args+=(--tls); fi
		fi
		out=$(REDISCLI_AUTH=$URL_PASS tmo $((CHECK_TIMEOUT + 2)) redis-cli "${args[@]}" ping \
			</dev/null 2>/dev/null) || return 1
		[ "$out" = PONG ]
	else
		if [ -n "$URL_PASS" ]; then
			# (the trailing "x" keeps $(...) from eating the final newline)
			if [ -n "$URL_USER" ]; then
				auth=$(resp AUTH "$URL_USER" "$URL_PASS" && echo x)
			else
				auth=$(resp AUTH "$URL_PASS" && echo x)
			fi
			auth=${auth%x}
		fi
		# shellcheck disable=SC2016 # $1..$4 expand in the inner bash
		tmo $((CHECK_TIMEOUT + 2)) bash -c '
			exec 3<>"/dev/tcp/$1/$2" || exit 1
			if [ -n "$3" ]; then
				printf "%s" "$3" >&3
				IFS= read -r -t "$4" line <&3 || exit 1
				[[ $line == +OK* ]] || exit 1
			fi
			printf "*1\r\n\$4\r\nPING\r\n" >&3
			IFS= read -r -t "$4" line <&3 || exit 1
			[[ $line == +PONG* ]]
		' _ "$URL_HOST" "$URL_PORT" "$auth" "$CHECK_TIMEOUT" </dev/null >/dev/null 2>&1
	fi
}

# Is PID a live (non-zombie) process whose working directory is DIR?
# (PostgreSQL and Redis both chdir into their data directory, so this also
# rejects a pid file whose pid was reused by an unrelated process.)
pid_is_ours() {
	local pid=$1 dir=$2
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	if [ -d /proc/self ]; then
		[ -d "/proc/$pid" ] || return 1
		[ "$(readlink -f "/proc/$pid/cwd" 2>/dev/null)" = "$(readlink -f "$dir")" ]
	else
		kill -0 "$pid" 2>/dev/null
	fi
}

# wait_gone PID DIR SECONDS: wait until PID is no longer ours.
wait_gone() {
	local pid=$1 dir=$2 i
	for ((i = 0; i < $3 * 5; i++)); do
		pid_is_ours "$pid" "$dir" || return 0
		sleep 0.2
	done
	return 1
}

# Serialize concurrent runs that manage the same data dir (fd 9 is closed for
# the daemons so they do not keep holding the lock).
LOCKED=
lock_data_dir() {
	[ -z "$LOCKED" ] || return 0
	mkdir -p "$DATA_DIR"
	DATA_DIR=$(cd -- "$DATA_DIR" && pwd -P)
	derive_paths
	LOCKED=1
	have flock || return 0
	exec 9>>"$DATA_DIR/.lock"
	if ! flock -n 9; then
		log "waiting for another ensure-services.sh run on $DATA_DIR"
		flock -w 300 9 || die "timed out waiting for the lock on $DATA_DIR/.lock"
	fi
}

install_packages() {
	if ! is_root || ! have apt-get; then
		return 1
	fi
	log "installing $* with apt-get (this can take a minute)"
	if [ -z "$APT_UPDATED" ]; then
		DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null >&2 9>&- || return 1
		APT_UPDATED=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" \
		</dev/null >&2 9>&- || return 1
}

# ------------------------------------------------------------- PostgreSQL ---

# Sets PG_DATA PG_BASE PG_SOCK PG_LOG. .data/postgres may be a symlink (see
# pg_relocate_if_needed); the log and socket dir live next to the real dir.
pg_paths() {
	local link=$DATA_DIR/postgres
	if [ -L "$link" ]; then
		PG_DATA=$(readlink -f "$link")
	else
		PG_DATA=$link
	fi
	PG_BASE=$(dirname "$PG_DATA")
	PG_SOCK=$PG_BASE/pg-socket
	PG_LOG=$PG_BASE/postgres.log
}

pg_running_pid() {
	local pid
	[ -f "$PG_DATA/postmaster.pid" ] || return 1
	pid=$(head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null) || return 1
	pid_is_ours "$pid" "$PG_DATA" || return 1
	printf '%s\n' "$pid"
}

pg_running_port() { sed -n 4p "$PG_DATA/postmaster.pid" 2>/dev/null; }

# Directory with initdb/pg_ctl/postgres: the one matching an existing cluster,
# else the highest /usr/lib/postgresql/*/bin, else from PATH.
find_pg_bindir() {
	local d ver='' best
	if [ -f "$PG_DATA/PG_VERSION" ]; then
		ver=$(cat "$PG_DATA/PG_VERSION")
		if [ -x "/usr/lib/postgresql/$ver/bin/pg_ctl" ]; then
			printf '%s\n' "/usr/lib/postgresql/$ver/bin"
			return 0
		fi
	fi
	best=$(for d in /usr/lib/postgresql/*/bin; do
		if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
			printf '%s\n' "$d"
		fi
	done | sort -V | tail -n 1)
	if [ -n "$best" ]; then
		printf '%s\n' "$best"
		return 0
	fi
	if have initdb; then
		d=$(dirname "$(command -v initdb)")
		if [ -x "$d/pg_ctl" ]; then
			printf '%s\n' "$d"
			return 0
		fi
	fi
	return 1
}

# PostgreSQL refuses to run as root: pick the OS user to run it as.
pg_choose_user() {
	local owner
	PG_USER=''
	is_root || return 0
	if [ -f "$PG_DATA/PG_VERSION" ]; then
		owner=$(stat -c %U "$PG_DATA")
		if [ "$owner" != root ] && [ "$owner" != UNKNOWN ]; then
			PG_USER=$owner
			return 0
		fi
	fi
	if id -u postgres >/dev/null 2>&1; then
		PG_USER=postgres
		return 0
	fi
	if ! id -u "$PG_FALLBACK_OS_USER" >/dev/null 2>&1; then
		have useradd || die "running as root, no 'postgres' user and no useradd to create '$PG_FALLBACK_OS_USER'"
		log "creating system user $PG_FALLBACK_OS_USER to run PostgreSQL"
		useradd --system --user-group --no-create-home --home-dir /nonexistent \
			--shell /usr/sbin/nologin "$PG_FALLBACK_OS_USER"
	fi
	PG_USER=$PG_FALLBACK_OS_USER
}

# Run a command as PG_USER (from / so an unreadable cwd does not matter).
as_pg() {
	if [ -z "$PG_USER" ]; then
		"$@"
	elif have runuser; then
		(cd / && runuser -u "$PG_USER" -- "$@")
	else
		(cd / && su -s /bin/bash "$PG_USER" -c "$(printf '%q ' "$@")")
	fi
}

pg_give() { # chown paths to PG_USER (no-op when not root)
	if [ -n "$PG_USER" ]; then
		chown "$PG_USER:$(id -gn "$PG_USER")" "$@"
	fi
}

# When root and PG_USER cannot reach the data dir (e.g. repo under /root, or a
# mktemp -d directory), keep the cluster in /var/lib/rapport-pg/<hash> and make
# .data/postgres a symlink to it.
pg_relocate_if_needed() {
	local alt
	[ -n "$PG_USER" ] || return 0
	[ -f "$PG_DATA/PG_VERSION" ] && return 0
	# shellcheck disable=SC2016 # $1 is expanded by the inner sh
	as_pg /bin/sh -c '[ -x "$1" ]' sh "$PG_BASE" 2>/dev/null && return 0
	alt=/var/lib/rapport-pg/$(cd -- "$DATA_DIR" && pwd -P | cksum | cut -d ' ' -f 1)
	log "PostgreSQL: user $PG_USER cannot access $PG_BASE; keeping the cluster in $alt (symlinked from $DATA_DIR/postgres)"
	mkdir -p "$alt"
	chmod 755 /var/lib/rapport-pg
	pg_give "$alt"
	chmod 700 "$alt"
	rm -rf "${DATA_DIR:?}/postgres"
	ln -s "$alt/postgres" "$DATA_DIR/postgres"
	pg_paths
}

pg_start_private() {
	local bindir=$1 pid i sockopt
	pg_paths
	pg_choose_user
	pg_relocate_if_needed

	# Stale pid file (instance died, container restarted, pid reused...).
	if [ -f "$PG_DATA/postmaster.pid" ]; then
		log "PostgreSQL: removing stale $PG_DATA/postmaster.pid"
		rm -f "$PG_DATA/postmaster.pid"
		rm -f "$PG_SOCK"/.s.PGSQL.*
	fi

	if [ ! -f "$PG_DATA/PG_VERSION" ]; then
		if [ -d "$PG_DATA" ] && [ -n "$(ls -A "$PG_DATA")" ]; then
			log "PostgreSQL: $PG_DATA is not an initialized cluster; recreating it"
			rm -rf "$PG_DATA"
		fi
		mkdir -p "$PG_DATA"
		pg_give "$PG_DATA"
		chmod 700 "$PG_DATA"
		log "PostgreSQL: initdb in $PG_DATA ($bindir)"
		if ! as_pg "$bindir/initdb" -D "$PG_DATA" -U "$PG_SUPERUSER" --auth=trust \
			-E UTF8 --no-locale </dev/null >"$PG_BASE/initdb.log" 2>&1; then
			tail -n 20 "$PG_BASE/initdb.log" >&2 || true
			die "initdb failed (see $PG_BASE/initdb.log)"
		fi
		printf "\n# Rapport private instance settings (ensure-services.sh)\ninclude_if_exists = 'rapport.conf'\n" \
			>>"$PG_DATA/postgresql.conf"
	fi

	mkdir -p "$PG_SOCK"
	chmod 755 "$PG_SOCK"
	touch "$PG_LOG"
	pg_give "$PG_SOCK" "$PG_LOG"
	# Unix socket paths are limited to ~107 bytes; use TCP only if too long.
	sockopt=$PG_SOCK
	if [ $((${#PG_SOCK} + 20)) -gt 107 ]; then
		log "PostgreSQL: socket dir path too long, unix socket disabled (TCP only)"
		sockopt=''
	fi
	{
		echo "# written by scripts/ensure-services.sh on every start"
		echo "listen_addresses = '127.0.0.1'"
		echo "port = $PG_PORT"
		echo "unix_socket_directories = '${sockopt//\'/\'\'}'"
	} >"$PG_DATA/rapport.conf"
	pg_give "$PG_DATA/rapport.conf"

	log "PostgreSQL: starting private instance on 127.0.0.1:$PG_PORT (log: $PG_LOG)"
	if ! as_pg "$bindir/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t "$PG_START_TIMEOUT" \
		start </dev/null >&2 9>&-; then
		tail -n 20 "$PG_LOG" >&2 || true
		die "PostgreSQL failed to start (see $PG_LOG); is port $PG_PORT in use? (set RAPPORT_PG_PORT)"
	fi
	for ((i = 0; i < PG_START_TIMEOUT * 5; i++)); do
		if pid=$(pg_running_pid) && [ "$(pg_running_port)" = "$PG_PORT" ] &&
			pg_reachable "postgres://$PG_SUPERUSER@127.0.0.1:$PG_PORT/postgres"; then
			log "PostgreSQL: private instance ready (pid $pid)"
			return 0
		fi
		sleep 0.2
	done
	tail -n 20 "$PG_LOG" >&2 || true
	die "PostgreSQL did not become ready on 127.0.0.1:$PG_PORT within ${PG_START_TIMEOUT}s"
}

pg_stop_private() {
	local pid
	pg_paths
	if ! pid=$(pg_running_pid); then
		if [ -f "$PG_DATA/postmaster.pid" ]; then
			log "PostgreSQL: not running; removing stale pid file"
			rm -f "$PG_DATA/postmaster.pid"
		else
			log "PostgreSQL: private instance not running"
		fi
		return 0
	fi
	log "PostgreSQL: stopping private instance (pid $pid)"
	kill -INT "$pid" 2>/dev/null || true # fast shutdown
	if ! wait_gone "$pid" "$PG_DATA" "$STOP_TIMEOUT"; then
		log "PostgreSQL: fast shutdown timed out; sending SIGQUIT (immediate shutdown)"
		kill -QUIT "$pid" 2>/dev/null || true
		wait_gone "$pid" "$PG_DATA" 10 || die "could not stop PostgreSQL (pid $pid)"
	fi
}

ensure_pg() {
	local url=${DATABASE_URL:-} db bindir pid port base_url
	if [ -n "$url" ]; then
		if pg_reachable "$url"; then
			log "PostgreSQL: using DATABASE_URL $(mask_url "$url")"
			OUT_DATABASE_URL=$url
			return 0
		fi
		log "PostgreSQL: DATABASE_URL $(mask_url "$url") is not reachable"
	else
		if pg_reachable "$DEFAULT_DATABASE_URL"; then
			log "PostgreSQL: using $DEFAULT_DATABASE_URL"
			OUT_DATABASE_URL=$DEFAULT_DATABASE_URL
			return 0
		fi
		log "PostgreSQL: nothing usable at $DEFAULT_DATABASE_URL"
	fi

	# Keep the database name of the requested URL (default: postgres).
	parse_url "${url:-$DEFAULT_DATABASE_URL}" 5432 || URL_PATH=''
	db=${URL_PATH#/}
	db=${db:-postgres}
	base_url=postgres://$PG_SUPERUSER@127.0.0.1:$PG_PORT
	lock_data_dir
	pg_paths

	if pid=$(pg_running_pid); then
		port=$(pg_running_port)
		if [ "$port" = "$PG_PORT" ] && pg_reachable "$base_url/postgres"; then
			log "PostgreSQL: reusing private instance (pid $pid) on 127.0.0.1:$PG_PORT"
			OUT_DATABASE_URL=$base_url/$db
			return 0
		fi
		log "PostgreSQL: private instance (pid $pid) is on port $port / not answering; restarting it"
		pg_stop_private
	fi

	bindir=$(find_pg_bindir) || bindir=''
	if [ -z "$bindir" ] && install_packages postgresql; then
		bindir=$(find_pg_bindir) || bindir=''
	fi
	if [ -z "$bindir" ]; then
		log "PostgreSQL: no server binaries (initdb/pg_ctl) found"
		MISSING+=(postgresql)
		return 0
	fi
	pg_start_private "$bindir"
	OUT_DATABASE_URL=$base_url/$db
}

# ------------------------------------------------------------------ Redis ---

derive_paths() {
	REDIS_DIR=$DATA_DIR/redis
	REDIS_PIDFILE=$REDIS_DIR/redis.pid
	REDIS_LOG=$DATA_DIR/redis.log
}
derive_paths

redis_running_pid() {
	local pid
	[ -f "$REDIS_PIDFILE" ] || return 1
	pid=$(head -n 1 "$REDIS_PIDFILE" 2>/dev/null) || return 1
	pid_is_ours "$pid" "$REDIS_DIR" || return 1
	printf '%s\n' "$pid"
}

find_redis_server() {
	if have redis-server; then
		command -v redis-server
	elif [ -x /usr/bin/redis-server ]; then
		echo /usr/bin/redis-server
	else
		return 1
	fi
}

redis_stop_private() {
	local pid
	if ! pid=$(redis_running_pid); then
		if [ -f "$REDIS_PIDFILE" ]; then
			log "Redis: not running; removing stale pid file"
			rm -f "$REDIS_PIDFILE"
		else
			log "Redis: private instance not running"
		fi
		return 0
	fi
	log "Redis: stopping private instance (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	if ! wait_gone "$pid" "$REDIS_DIR" "$STOP_TIMEOUT"; then
		log "Redis: did not exit on SIGTERM; sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		wait_gone "$pid" "$REDIS_DIR" 10 || die "could not stop Redis (pid $pid)"
	fi
	rm -f "$REDIS_PIDFILE"
}

redis_start_private() {
	local server=$1 url=$2 pid i
	if [ -f "$REDIS_PIDFILE" ]; then
		log "Redis: removing stale $REDIS_PIDFILE"
		rm -f "$REDIS_PIDFILE"
	fi
	if redis_reachable "$url"; then
		die "something else already answers on 127.0.0.1:$REDIS_PORT (set RAPPORT_REDIS_PORT)"
	fi
	mkdir -p "$REDIS_DIR"
	log "Redis: starting private instance on 127.0.0.1:$REDIS_PORT (log: $REDIS_LOG)"
	# shellcheck disable=SC2094 # redis-server and the redirection both append
	if ! "$server" --daemonize yes --port "$REDIS_PORT" --bind 127.0.0.1 \
		--dir "$REDIS_DIR" --pidfile "$REDIS_PIDFILE" --logfile "$REDIS_LOG" \
		</dev/null >>"$REDIS_LOG" 2>&1 9>&-; then
		tail -n 20 "$REDIS_LOG" >&2 || true
		die "redis-server failed to start (see $REDIS_LOG)"
	fi
	for ((i = 0; i < REDIS_START_TIMEOUT * 5; i++)); do
		if pid=$(redis_running_pid) && redis_reachable "$url"; then
			log "Redis: private instance ready (pid $pid)"
			return 0
		fi
		sleep 0.2
	done
	tail -n 20 "$REDIS_LOG" >&2 || true
	die "Redis did not become ready on 127.0.0.1:$REDIS_PORT within ${REDIS_START_TIMEOUT}s (port in use? set RAPPORT_REDIS_PORT)"
}

ensure_redis() {
	local url=${REDIS_URL:-} server pid private_url path=''
	if [ -n "$url" ]; then
		if redis_reachable "$url"; then
			log "Redis: using REDIS_URL $(mask_url "$url")"
			OUT_REDIS_URL=$url
			return 0
		fi
		log "Redis: REDIS_URL $(mask_url "$url") is not reachable"
		# keep a /<db-number> path, if any
		if parse_url "$url" 6379 && [[ $URL_PATH =~ ^/[0-9]+$ ]]; then path=$URL_PATH; fi
	else
		if redis_reachable "$DEFAULT_REDIS_URL"; then
			log "Redis: using $DEFAULT_REDIS_URL"
			OUT_REDIS_URL=$DEFAULT_REDIS_URL
			return 0
		fi
		log "Redis: nothing usable at $DEFAULT_REDIS_URL"
	fi
	private_url=redis://127.0.0.1:$REDIS_PORT$path
	lock_data_dir

	if pid=$(redis_running_pid); then
		if redis_reachable "$private_url"; then
			log "Redis: reusing private instance (pid $pid) on 127.0.0.1:$REDIS_PORT"
			OUT_REDIS_URL=$private_url
			return 0
		fi
		log "Redis: private instance (pid $pid) not answering on port $REDIS_PORT; restarting it"
		redis_stop_private
	fi

	server=$(find_redis_server) || server=''
	if [ -z "$server" ] && install_packages redis-server; then
		server=$(find_redis_server) || server=''
	fi
	if [ -z "$server" ]; then
		log "Redis: no redis-server binary found"
		MISSING+=(redis-server)
		return 0
	fi
	redis_start_private "$server" "$private_url"
	OUT_REDIS_URL=$private_url
}

# ------------------------------------------------------------------- main ---

validate() {
	[[ $PG_PORT =~ ^[0-9]+$ ]] || die "RAPPORT_PG_PORT must be a number (got '$PG_PORT')"
	[[ $REDIS_PORT =~ ^[0-9]+$ ]] || die "RAPPORT_REDIS_PORT must be a number (got '$REDIS_PORT')"
	# Absolute path; the directory itself is only created when a private
	# instance is needed.
	case $DATA_DIR in /*) ;; *) DATA_DIR=$PWD/$DATA_DIR ;; esac
	if [ -d "$DATA_DIR" ]; then DATA_DIR=$(cd -- "$DATA_DIR" && pwd -P); fi
	derive_paths
}

cmd_start() {
	validate
	ensure_pg
	ensure_redis
	if [ ${#MISSING[@]} -gt 0 ]; then
		log "error: cannot provide: ${MISSING[*]}"
		if is_root && have apt-get; then
			log "  automatic installation failed; try: apt-get update && apt-get install -y ${MISSING[*]}"
		elif have apt-get; then
			log "  install the servers:   sudo apt-get install ${MISSING[*]}"
			log "  (or re-run this script as root to install them automatically)"
		else
			log "  install the PostgreSQL server (initdb/pg_ctl) and/or redis-server with your package manager"
		fi
		log "  or point DATABASE_URL / REDIS_URL at reachable servers, e.g."
		log "    export DATABASE_URL=postgres://USER:PASSWORD@HOST:5432/DB REDIS_URL=redis://HOST:6379"
		exit 1
	fi
}

cmd_stop() {
	if [ ! -d "$DATA_DIR" ]; then
		log "nothing to stop ($DATA_DIR does not exist)"
		return 0
	fi
	validate
	lock_data_dir
	pg_stop_private
	redis_stop_private
}

main() {
	case "${1:-start}" in
	start)
		# Everything the start logic writes to stdout goes to stderr; stdout
		# gets only the export lines, and only on success.
		cmd_start >&2
		printf 'export DATABASE_URL=%q\n' "$OUT_DATABASE_URL"
		printf 'export REDIS_URL=%q\n' "$OUT_REDIS_URL"
		;;
	stop) cmd_stop >&2 ;;
	-h | --help | help) usage >&2 ;;
	*)
		usage >&2
		exit 2
		;;
	esac
}

main "$@"
