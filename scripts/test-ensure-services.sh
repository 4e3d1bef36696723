#!/usr/bin/env bash
# Self-test for scripts/ensure-services.sh: proves the private-instance
# fallback works on this machine without touching services on 5432/6379.
#
# Usage: scripts/test-ensure-services.sh
# Needs: psql and redis-cli (for the checks), PostgreSQL/Redis server binaries.
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
ES=$SCRIPT_DIR/ensure-services.sh

PASSED=0
FAILED=0
pass() {
	PASSED=$((PASSED + 1))
	printf 'ok     - %s\n' "$1"
}
fail() {
	FAILED=$((FAILED + 1))
	printf 'FAILED - %s\n' "$1"
}
# check DESCRIPTION COMMAND...: pass if COMMAND succeeds
check() {
	local desc=$1
	shift
	if "$@"; then pass "$desc"; else fail "$desc"; fi
}

for tool in psql redis-cli timeout; do
	command -v "$tool" >/dev/null || {
		echo "test-ensure-services: $tool is required" >&2
		exit 1
	}
done

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
	local p=$1
	while port_in_use "$p"; do p=$((p + 1)); done
	printf '%s\n' "$p"
}
# Below the kernel's ephemeral range (32768-60999 by default): a port in it
# can be held by any outgoing connection's local end, which makes the
# server's bind fail even though nothing listens there.
PG_PORT=$(free_port 25532)
REDIS_PORT=$(free_port 26479)
UNREACHABLE_DB=postgres://postgres@127.0.0.1:1/postgres
UNREACHABLE_REDIS=redis://127.0.0.1:1

TMP=$(mktemp -d)
chmod 755 "$TMP" # the postgres OS user must be able to reach the data dir
DATA=$TMP/data
DATA2=$TMP/data-unused
ALT_DIRS=()
DECOY=''

cleanup() {
	local d
	if [ -n "$DECOY" ]; then kill "$DECOY" 2>/dev/null || true; fi
	for d in "$DATA" "$TMP/private/data"; do
		if [ -d "$d" ]; then
			RAPPORT_DATA_DIR=$d RAPPORT_PG_PORT=$PG_PORT RAPPORT_REDIS_PORT=$REDIS_PORT \
				timeout 60 "$ES" stop >/dev/null 2>&1 || true
		fi
	done
	rm -rf "$TMP"
	for d in "${ALT_DIRS[@]}"; do
		case $d in /var/lib/rapport-pg/?*) rm -rf "$d" ;; esac
	done
	if [ ${#ALT_DIRS[@]} -gt 0 ]; then rmdir /var/lib/rapport-pg 2>/dev/null || true; fi
}
trap cleanup EXIT

# es DATA_DIR [args...]: run ensure-services.sh with the unreachable URLs and
# the test ports. The URLs are captured through a pipe (like eval "$(...)")
# so a daemon that kept stdout open would make this hit the timeout.
# Sets RC, OUT (stdout) and ERR (stderr file).
ERR=$TMP/stderr
# shellcheck disable=SC2016 # $@ / $out are expanded by the inner bash
es() {
	local data=$1
	shift
	RC=0
	OUT=$(timeout 180 env \
		DATABASE_URL="${T_DATABASE_URL:-$UNREACHABLE_DB}" \
		REDIS_URL="${T_REDIS_URL:-$UNREACHABLE_REDIS}" \
		RAPPORT_PG_PORT="$PG_PORT" RAPPORT_REDIS_PORT="$REDIS_PORT" \
		RAPPORT_DATA_DIR="$data" \
		bash -c 'out=$("$@") || exit; printf "%s" "$out"' _ "$ES" "$@" 2>"$ERR") || RC=$?
}

only_exports() {
	[ "$(printf '%s\n' "$OUT" | wc -l)" -eq 2 ] &&
		! printf '%s\n' "$OUT" | grep -Evq '^export (DATABASE_URL|REDIS_URL)='
}
url_of() { (eval "$OUT" && printenv "$1"); }
psql_q() { PGCONNECT_TIMEOUT=5 timeout 10 psql -X -w -A -t -d "$1" -c "$2" 2>/dev/null; }
redis_q() { timeout 10 redis-cli -u "$1" "${@:2}" 2>/dev/null; }
pg_up() { [ "$(psql_q "$1" 'select 1')" = 1 ]; }
redis_up() { [ "$(redis_q "$1" ping)" = PONG ]; }
pg_pid() { head -n 1 "$1/postgres/postmaster.pid" 2>/dev/null || true; }
redis_pid() { head -n 1 "$1/redis/redis.pid" 2>/dev/null || true; }
pg_down() { ! pg_up "$1"; }
redis_down() { ! redis_up "$1"; }
both_up() { pg_up "$EXP_DB" && redis_up "$EXP_REDIS"; }
is_relocated() { [[ $(readlink "$1") == /var/lib/rapport-pg/* ]]; }
reused_both() { [ "$RC" -eq 0 ] && [ "$(grep -c 'reusing private instance' "$ERR")" -eq 2 ]; }
show_stderr() { sed 's/^/    | /' "$ERR"; }

EXP_DB=postgres://postgres@127.0.0.1:$PG_PORT/postgres
EXP_REDIS=redis://127.0.0.1:$REDIS_PORT
echo "# test ports: PostgreSQL $PG_PORT, Redis $REDIS_PORT; data: $DATA"

# The machine's own services (if any) must be unaffected at the end.
REAL_PG_UP=0 REAL_REDIS_UP=0
if pg_up postgres://postgres@127.0.0.1:5432/postgres; then REAL_PG_UP=1; fi
if redis_up redis://127.0.0.1:6379; then REAL_REDIS_UP=1; fi

if command -v shellcheck >/dev/null; then
	check "shellcheck ensure-services.sh test-ensure-services.sh" \
		shellcheck "$ES" "$SCRIPT_DIR/test-ensure-services.sh"
fi

# --- 1. first run (two at once): starts private instances -----------------
(ERR=$TMP/par.err es "$DATA" && printf '%s' "$OUT" >"$TMP/par.out" && exit "$RC") &
PAR=$!
es "$DATA"
PAR_RC=0
wait "$PAR" || PAR_RC=$?
check "first run exits 0 (rc=$RC)" test "$RC" -eq 0
[ "$RC" -eq 0 ] || show_stderr
check "concurrent first run also exits 0 (rc=$PAR_RC) with the same URLs" \
	test "$PAR_RC" -eq 0 -a "$(cat "$TMP/par.out" 2>/dev/null)" = "$OUT"
if command -v flock >/dev/null; then
	check "data dir lock is not held by the daemons" flock -n "$DATA/.lock" true
fi
check "stdout has only the two export lines" only_exports
check "DATABASE_URL is the private instance ($EXP_DB)" test "$(url_of DATABASE_URL)" = "$EXP_DB"
check "REDIS_URL is the private instance ($EXP_REDIS)" test "$(url_of REDIS_URL)" = "$EXP_REDIS"
check "psql select 1 via DATABASE_URL" pg_up "$EXP_DB"
check "redis-cli ping via REDIS_URL" redis_up "$EXP_REDIS"
check "PostgreSQL data dir is $DATA/postgres" \
	test "$(psql_q "$EXP_DB" 'show data_directory')" = "$DATA/postgres"
check "PostgreSQL listens on 127.0.0.1 only" \
	test "$(psql_q "$EXP_DB" 'show listen_addresses')" = 127.0.0.1
check "PostgreSQL unix socket is inside the data dir" test -S "$DATA/pg-socket/.s.PGSQL.$PG_PORT"
check "Redis dir is $DATA/redis" \
	test "$(redis_q "$EXP_REDIS" config get dir | tail -n 1)" = "$DATA/redis"
check "Redis binds 127.0.0.1 only" \
	test "$(redis_q "$EXP_REDIS" config get bind | tail -n 1)" = 127.0.0.1
FIRST_OUT=$OUT
PG_PID1=$(pg_pid "$DATA")
REDIS_PID1=$(redis_pid "$DATA")
psql_q "$EXP_DB" 'create table if not exists es_probe (x int); insert into es_probe values (42)' >/dev/null || true
redis_q "$EXP_REDIS" set es_probe 42 >/dev/null || true

# --- 2. second run: reuses the running instances ---------------------------
es "$DATA"
check "second run exits 0 (rc=$RC)" test "$RC" -eq 0
check "second run prints the same URLs" test "$OUT" = "$FIRST_OUT"
check "second run reuses the PostgreSQL process (pid $PG_PID1)" test "$(pg_pid "$DATA")" = "$PG_PID1"
check "second run reuses the Redis process (pid $REDIS_PID1)" test "$(redis_pid "$DATA")" = "$REDIS_PID1"
check "second run says it reuses both" reused_both
check "data kept (postgres row)" test "$(psql_q "$EXP_DB" 'select x from es_probe')" = 42
check "data kept (redis key)" test "$(redis_q "$EXP_REDIS" get es_probe)" = 42

# --- 3. step 1: reachable URLs are used as they are -------------------------
T_DATABASE_URL=$EXP_DB T_REDIS_URL=$EXP_REDIS es "$DATA2"
check "reachable DATABASE_URL/REDIS_URL: exits 0 (rc=$RC)" test "$RC" -eq 0
check "reachable DATABASE_URL/REDIS_URL are printed unchanged" test "$OUT" = "$FIRST_OUT"
check "reachable URLs: no private instance created" test ! -e "$DATA2/postgres" -a ! -e "$DATA2/redis"

# --- 4. instances died (SIGKILL, stale pid files) ---------------------------
kill -KILL "$PG_PID1" "$REDIS_PID1" 2>/dev/null || true
for _ in $(seq 50); do
	pg_up "$EXP_DB" || redis_up "$EXP_REDIS" || break
	sleep 0.2
done
check "stale pid files present after SIGKILL" \
	test -f "$DATA/postgres/postmaster.pid" -a -f "$DATA/redis/redis.pid"
es "$DATA"
check "run after SIGKILL exits 0 (rc=$RC)" test "$RC" -eq 0
[ "$RC" -eq 0 ] || show_stderr
check "run after SIGKILL prints the same URLs" test "$OUT" = "$FIRST_OUT"
check "PostgreSQL restarted (new pid)" test -n "$(pg_pid "$DATA")" -a "$(pg_pid "$DATA")" != "$PG_PID1"
check "Redis restarted (new pid)" test -n "$(redis_pid "$DATA")" -a "$(redis_pid "$DATA")" != "$REDIS_PID1"
check "PostgreSQL reachable after restart, data kept" test "$(psql_q "$EXP_DB" 'select x from es_probe')" = 42
check "Redis reachable after restart" redis_up "$EXP_REDIS"

# --- 5. stop, then pid files pointing at an unrelated live process ----------
es "$DATA" stop
check "stop exits 0 (rc=$RC) and prints nothing on stdout" test "$RC" -eq 0 -a -z "$OUT"
check "PostgreSQL stopped" pg_down "$EXP_DB"
check "Redis stopped" redis_down "$EXP_REDIS"
check "PostgreSQL pid file removed" test ! -e "$DATA/postgres/postmaster.pid"
check "Redis pid file removed" test ! -e "$DATA/redis/redis.pid"
es "$DATA" stop
check "second stop is a no-op (rc=$RC)" test "$RC" -eq 0

sleep 300 &
DECOY=$!
# postmaster.pid format: pid, data dir, start time, port
printf '%s\n' "$DECOY" "$DATA/postgres" 0 "$PG_PORT" >"$DATA/postgres/postmaster.pid"
printf '%s\n' "$DECOY" >"$DATA/redis/redis.pid"
es "$DATA"
check "pid files naming an unrelated live pid: exits 0 (rc=$RC)" test "$RC" -eq 0
[ "$RC" -eq 0 ] || show_stderr
check "... and PostgreSQL/Redis are up again" both_up
check "... and the unrelated process was left alone" kill -0 "$DECOY"
kill "$DECOY" 2>/dev/null || true
wait "$DECOY" 2>/dev/null || true
es "$DATA" stop
check "stop after restart exits 0 (rc=$RC)" test "$RC" -eq 0

# --- 6. unreachable servers and a different port ---------------------------
es "$DATA"
OLD_PG_PORT=$PG_PORT
PG_PORT=$(free_port $((PG_PORT + 1)))
es "$DATA"
check "RAPPORT_PG_PORT changed: exits 0 (rc=$RC)" test "$RC" -eq 0
check "... instance moved to port $PG_PORT" pg_up "postgres://postgres@127.0.0.1:$PG_PORT/postgres"
check "... old port $OLD_PG_PORT closed" pg_down "postgres://postgres@127.0.0.1:$OLD_PG_PORT/postgres"
es "$DATA" stop
check "stop exits 0 (rc=$RC)" test "$RC" -eq 0
PG_PORT=$OLD_PG_PORT

# --- 7. root: data dir the postgres OS user cannot enter (e.g. under /root) -
if [ "$(id -u)" -eq 0 ]; then
	mkdir -p "$TMP/private/data"
	chmod 700 "$TMP/private"
	PRIV=$TMP/private/data
	es "$PRIV"
	check "inaccessible data dir (root): exits 0 (rc=$RC)" test "$RC" -eq 0
	[ "$RC" -eq 0 ] || show_stderr
	if [ -L "$PRIV/postgres" ]; then
		ALT_DIRS+=("$(dirname "$(readlink -f "$PRIV/postgres")")")
	fi
	check "... .data/postgres is a symlink into /var/lib/rapport-pg" \
		is_relocated "$PRIV/postgres"
	check "... PostgreSQL reachable" pg_up "$EXP_DB"
	check "... Redis reachable" redis_up "$EXP_REDIS"
	es "$PRIV"
	check "... second run reuses it" reused_both
	es "$PRIV" stop
	check "... stop exits 0 (rc=$RC)" test "$RC" -eq 0
	check "... PostgreSQL stopped" pg_down "$EXP_DB"
fi

# --- 8. the machine's own services are untouched ---------------------------
if [ "$REAL_PG_UP" = 1 ]; then
	check "PostgreSQL on 127.0.0.1:5432 still up" pg_up postgres://postgres@127.0.0.1:5432/postgres
fi
if [ "$REAL_REDIS_UP" = 1 ]; then
	check "Redis on 127.0.0.1:6379 still up" redis_up redis://127.0.0.1:6379
fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
