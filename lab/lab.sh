#!/usr/bin/env bash
# The local lab: a real redis-server and PostgreSQL 15 on loopback, data under .lab/.
#   lab/lab.sh up       start both (seeding them the first time) and the sample app under pm2;
#                       harmless when running
#   lab/lab.sh seed     put the canonical lab data back (Redis db 0 of the lab, payment_sandbox,
#                       logs, certificates; no backups);
#                       a running sample app is restarted, so that its own queue exists again
#   lab/lab.sh down     stop both; --purge also removes .lab/
#   lab/lab.sh status   what runs (exit 0 when both are up, 3 otherwise)
#   lab/lab.sh env      the ports and paths, as shell exports
# LAB_REDIS_PORT (16379), LAB_PG_PORT (15432) and LAB_DIR (.lab) override the defaults; `up`
# remembers the ports in $LAB_DIR/redis.port and $LAB_DIR/pg.port, used when they are not set.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LAB_DIR="${LAB_DIR:-$ROOT/.lab}"
# A port: the environment's, else the one this lab was started with (so that a new shell, and
# the lab inventory, find this lab rather than another one on the default ports), else the default.
remembered_port() { # remembered_port FILE DEFAULT
    local p=""
    [[ -f "$1" ]] && p="$(cat "$1")"
    if [[ "$p" =~ ^[0-9]+$ ]]; then echo "$p"; else echo "$2"; fi
}
REDIS_PORT="${LAB_REDIS_PORT:-$(remembered_port "$LAB_DIR/redis.port" 16379)}"
PG_PORT="${LAB_PG_PORT:-$(remembered_port "$LAB_DIR/pg.port" 15432)}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
# The cluster lives in $LAB_DIR/pg, unless the lab had to put it elsewhere (see pg_home_for_root):
# then $LAB_DIR/pg.home names the directory.
PG_HOME="$LAB_DIR/pg"
PG_HOMES=/var/lib/oncall-lab
if [[ -f "$LAB_DIR/pg.home" ]]; then
    PG_HOME="$(cat "$LAB_DIR/pg.home")"
    # the lab removes that directory on `down --purge`: only ever one of its own
    [[ "$PG_HOME" =~ ^$PG_HOMES/[0-9a-f]{16}$ ]] || { echo "lab: $LAB_DIR/pg.home does not name a directory under $PG_HOMES" >&2; exit 1; }
fi
PGDATA="$PG_HOME/data"
RUN="$PG_HOME/run"

say() { printf 'lab: %s\n' "$*"; }
die() { printf 'lab: %s\n' "$*" >&2; exit 1; }

# PostgreSQL refuses to run as root: as root the cluster belongs to a system user (postgres,
# or oncall-lab when there is none) and every server command runs through runuser.
pg_user() {
    if id postgres >/dev/null 2>&1; then echo postgres; return; fi
    id oncall-lab >/dev/null 2>&1 || useradd --system --no-create-home oncall-lab
    echo oncall-lab
}
as_pg() {
    if [[ $(id -u) -eq 0 ]]; then runuser -u "$(pg_user)" -- "$@"; else "$@"; fi
}

REDIS_PID="$LAB_DIR/redis/redis.pid"
# The pid in our pid file, if that process is still a redis-server (pids get reused).
redis_pid() {
    [[ -f "$REDIS_PID" ]] && [[ "$(ps -o comm= -p "$(cat "$REDIS_PID")")" == redis-server ]] && cat "$REDIS_PID"
}
redis_ping() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }
# Up means: our pid file names a live redis-server, and that process answers on the port.
redis_up() {
    local pid
    pid=$(redis_pid) || return 1
    [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" info server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p')" == "$pid" ]]
}
pg_ping() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" 2>/dev/null; }
pg_ours() { [[ -f "$PGDATA/postmaster.pid" ]] && as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; }
pg_up() { pg_ours && [[ "$(sed -n 4p "$PGDATA/postmaster.pid")" == "$PG_PORT" ]] && pg_ping; }
psql_lab() { "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres "$@"; }

start_redis() {
    if redis_up; then say "redis already up on 127.0.0.1:$REDIS_PORT"; return; fi
    redis_pid >/dev/null && die "this lab's redis (pid $(redis_pid)) is not the one on port $REDIS_PORT: lab/lab.sh down first"
    redis_ping && die "127.0.0.1:$REDIS_PORT answers but is not this lab's redis (no live $REDIS_PID): set LAB_REDIS_PORT"
    mkdir -p "$LAB_DIR/redis"
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --protected-mode yes --daemonize yes \
        --dir "$LAB_DIR/redis" --pidfile "$REDIS_PID" \
        --logfile "$LAB_DIR/redis/redis.log" --save '' --appendonly no --dbfilename dump.rdb
    for _ in $(seq 50); do redis_up && break; sleep 0.1; done
    redis_up || die "redis-server did not start: see $LAB_DIR/redis/redis.log"
    say "redis up on 127.0.0.1:$REDIS_PORT (pid $(redis_pid))"
}

# As root the cluster belongs to $(pg_user), which may not be allowed into the checkout: a clone
# in root's home directory, or in a `mktemp -d` directory, has parents only root may enter. The
# lab then keeps the cluster under $PG_HOMES/<hash of LAB_DIR> (owned by that user,
# mode 0700) and records the place in $LAB_DIR/pg.home; nobody's home directory is chmod-ed.
pg_home_for_root() {
    [[ -f "$LAB_DIR/pg.home" ]] && return
    mkdir -p "$LAB_DIR"
    # the lab directory itself is ours to open; its parents are not
    if runuser -u "$(pg_user)" -- test -x "$(dirname "$LAB_DIR")"; then chmod 755 "$LAB_DIR"; return; fi
    PG_HOME="$PG_HOMES/$(printf '%s' "$LAB_DIR" | sha256sum | cut -c1-16)"
    PGDATA="$PG_HOME/data"
    RUN="$PG_HOME/run"
    mkdir -p "$PG_HOMES"
    chmod 755 "$PG_HOMES"
    echo "$PG_HOME" >"$LAB_DIR/pg.home"
    say "user $(pg_user) cannot enter $LAB_DIR: the lab's postgresql cluster lives in $PG_HOME"
}

start_pg() {
    if pg_up; then say "postgresql already up on 127.0.0.1:$PG_PORT"; return; fi
    pg_ping && die "127.0.0.1:$PG_PORT answers but is not this lab's postgresql ($PGDATA): set LAB_PG_PORT"
    if [[ $(id -u) -eq 0 ]]; then pg_home_for_root; fi
    mkdir -p "$PG_HOME" "$RUN"
    if [[ $(id -u) -eq 0 ]]; then
        chown "$(pg_user)" "$PG_HOME" "$RUN"
        chmod 700 "$PG_HOME"
        as_pg test -w "$PG_HOME" || die "user $(pg_user) cannot write to $PG_HOME"
    fi
    if [[ ! -f "$PGDATA/PG_VERSION" ]]; then
        local pwfile="$PG_HOME/.pw"
        echo postgres >"$pwfile"
        if [[ $(id -u) -eq 0 ]]; then chown "$(pg_user)" "$pwfile"; fi
        as_pg "$PG_BIN/initdb" -D "$PGDATA" -U postgres --pwfile="$pwfile" \
            -E UTF8 --auth-local=trust --auth-host=trust --no-sync >/dev/null
        rm -f "$pwfile"
        cat >>"$PGDATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$RUN'
shared_preload_libraries = 'pg_stat_statements'
track_io_timing = on
log_min_duration_statement = 500
CONF
    fi
    # -p: the port asked for now, not only the one postgresql.conf got when the cluster was made
    as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$PG_HOME/log" -o "-p $PG_PORT" -w start >/dev/null
    pg_up || die "postgresql did not start: see $PG_HOME/log"
    psql_lab -d postgres -tc "SELECT 1 FROM pg_database WHERE datname = 'payment_sandbox'" | grep -q 1 \
        || psql_lab -d postgres -c 'CREATE DATABASE payment_sandbox'
    say "postgresql up on 127.0.0.1:$PG_PORT"
}

seed() {
    if ! redis_up || ! pg_up; then die "the lab is not running: lab/lab.sh up"; fi
    [[ -d "$ROOT/lab/node/node_modules" ]] || (cd "$ROOT/lab/node" && npm install --no-audit --no-fund >/dev/null)
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" -n 0 flushdb >/dev/null
    (cd "$ROOT/lab/node" && node seed.js --port "$REDIS_PORT") >"$LAB_DIR/seed-summary.json"
    say "seeded redis: $(cat "$LAB_DIR/seed-summary.json")"
    psql_lab -d payment_sandbox -f "$ROOT/lab/sql/seed.sql" >/dev/null
    say "seeded postgresql database payment_sandbox"
    seed_logs
    seed_certs
    # backups written by earlier jobs are lab state too: the seeded lab has none
    rm -rf -- "$LAB_DIR/backups"
    touch "$LAB_DIR/seeded"
    restart_app_after_seed
}

# The flush removed the sample app's own queue (app-events: BullMQ writes its keys when the
# app starts): a running app is restarted, so that its queue exists again and works.
restart_app_after_seed() {
    app_online || return 0
    pm2_lab restart app >/dev/null
    local port
    port=$(app_port)
    for _ in $(seq 100); do
        app_healthy && redis-cli -h 127.0.0.1 -p "$REDIS_PORT" exists "bull:${APP_QUEUE:-app-events}:meta" | grep -q 1 && break
        sleep 0.1
    done
    app_healthy || die "the sample app did not answer on 127.0.0.1:$port/health after the seed: PM2_HOME=$LAB_DIR/pm2 $PM2 logs app"
    say "restarted the sample app (its queue app-events was flushed with the seed)"
}

# Application logs for the weekly window: rotated logs 15 to 65 days old, and a live log
# with a few errors for the daily health check.
seed_logs() {
    local logs="$LAB_DIR/logs" i
    rm -rf "$logs" && mkdir -p "$logs/api" "$logs/worker"
    for i in 1 2 3 4 5 6; do
        printf 'INFO request served\n%.0s' $(seq 20) >"$logs/api/api.log.$i"
        touch -d "$((i * 10 + 5)) days ago" "$logs/api/api.log.$i"
        printf 'INFO job done\n' >"$logs/worker/worker.log.$i"
        touch -d "$((i * 10 + 5)) days ago" "$logs/worker/worker.log.$i"
    done
    { printf 'INFO started\n'; printf 'ERROR upstream timeout\n'; printf 'INFO request served\n%.0s' $(seq 50); } >"$logs/api/api.log"
    say "seeded logs in $logs"
}

# Certificates (runbook 002 "SSL Certificate Renewal"): a self-signed certificate for localhost
# with 10 days left, so the SSL-expiry runbook has one to renew (inventory: oncall_certificates).
seed_certs() {
    local certs="$LAB_DIR/certs"
    command -v openssl >/dev/null || die "openssl is needed for the lab certificate: apt-get install openssl"
    mkdir -p "$certs" && rm -f "$certs"/lab.* "$certs"/*.bak
    (umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 10 \
        -subj /CN=localhost -addext subjectAltName=DNS:localhost \
        -keyout "$certs/lab.key" -out "$certs/lab.crt" 2>/dev/null) \
        || die "openssl could not make the lab certificate in $certs"
    chmod 0644 "$certs/lab.crt"
    say "seeded a 10-day self-signed certificate in $certs"
}

# Wait up to 5 s for a process to exit.
gone() { for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done; return 1; }

down() {
    local pid
    stop_app
    if pid=$(redis_pid); then
        # SHUTDOWN SAVE keeps the lab's queues across down and up, as a real server would.
        if redis_up; then redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown save >/dev/null 2>&1 || true; fi
        gone "$pid" || { kill "$pid"; gone "$pid"; } || kill -9 "$pid" 2>/dev/null || true
    fi
    if pg_ours; then as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null; fi
    say "down"
    if [[ "${1:-}" == --purge ]]; then
        if [[ "$PG_HOME" != "$LAB_DIR/pg" ]]; then rm -rf -- "$PG_HOME"; say "removed $PG_HOME"; fi
        rm -rf "$LAB_DIR"; say "removed $LAB_DIR"
    fi
}

# ---- The sample application under pm2 (issue 6) ------------------------------------------
# lab/app: a small Node API on Redis, PostgreSQL and a BullMQ queue, run by pm2 from lab/node
# with its own PM2_HOME ($LAB_DIR/pm2), so that the lab never shares a pm2 daemon with anyone.
# Releases are deployed under $LAB_DIR/app/releases/<version>, $LAB_DIR/app/current points
# at the live one; the lab installs release 1.0.0 the first time. Port: LAB_APP_PORT, else the
# one chosen before ($LAB_DIR/app/port), else 13001 for the default lab and a free port otherwise.
APP_DIR="$LAB_DIR/app"
PM2="$ROOT/lab/node/node_modules/.bin/pm2"
pm2_lab() { PM2_HOME="$LAB_DIR/pm2" "$PM2" "$@"; }
app_port() {
    if [[ -n "${LAB_APP_PORT:-}" ]]; then echo "$LAB_APP_PORT"; return; fi
    if [[ -f "$APP_DIR/port" ]]; then cat "$APP_DIR/port"; return; fi
    if [[ "$REDIS_PORT" == 16379 ]]; then echo 13001; return; fi
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
pm2_alive() { [[ -f "$LAB_DIR/pm2/pm2.pid" ]] && kill -0 "$(cat "$LAB_DIR/pm2/pm2.pid")" 2>/dev/null; }
app_online() { pm2_alive && pm2_lab jlist 2>/dev/null | grep -q '"name":"app".*"status":"online"'; }
app_healthy() { curl -fsS -m 2 "http://127.0.0.1:$(app_port)/health" >/dev/null 2>&1; }

start_app() {
    [[ -x "$PM2" ]] || (cd "$ROOT/lab/node" && npm install --no-audit --no-fund >/dev/null)
    local port
    port=$(app_port)
    mkdir -p "$APP_DIR/releases"
    echo "$port" >"$APP_DIR/port"
    if [[ ! -e "$APP_DIR/current" ]]; then
        cp -rL "$ROOT/lab/app/releases/1.0.0" "$APP_DIR/releases/"
        ln -sfn releases/1.0.0 "$APP_DIR/current"
    fi
    if app_online; then say "app already up on 127.0.0.1:$port (pm2, PM2_HOME=$LAB_DIR/pm2)"; return; fi
    APP_PORT="$port" REDIS_PORT="$REDIS_PORT" PG_PORT="$PG_PORT" PG_DB=payment_sandbox \
        NODE_PATH="$ROOT/lab/node/node_modules" \
        pm2_lab start "$APP_DIR/current/server.js" --name app -i 1 >/dev/null
    for _ in $(seq 100); do app_healthy && break; sleep 0.1; done
    app_healthy || die "the sample app did not answer on 127.0.0.1:$port/health: PM2_HOME=$LAB_DIR/pm2 $PM2 logs app"
    say "app $(curl -fsS "http://127.0.0.1:$port/version") up on 127.0.0.1:$port (pm2, PM2_HOME=$LAB_DIR/pm2)"
}

stop_app() {
    if pm2_alive; then pm2_lab kill >/dev/null 2>&1 || true; fi
}
# ---- end of the sample application ---------------------------------------------------------

case "${1:-}" in
    up)
        start_redis
        echo "$REDIS_PORT" >"$LAB_DIR/redis.port"
        start_pg
        echo "$PG_PORT" >"$LAB_DIR/pg.port"
        # Seed the first time, and whenever Redis came up empty (its dump was removed).
        if [[ ! -f "$LAB_DIR/seeded" ]] || [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" dbsize)" == 0 ]]; then
            seed
        fi
        start_app
        ;;
    seed) seed ;;
    down) down "${2:-}" ;;
    status)
        rc=0
        if redis_up; then say "redis up on 127.0.0.1:$REDIS_PORT"; else say "redis down"; rc=3; fi
        if pg_up; then say "postgresql up on 127.0.0.1:$PG_PORT"; else say "postgresql down"; rc=3; fi
        if app_healthy; then say "app up on 127.0.0.1:$(app_port)"; else say "app down"; rc=3; fi
        exit $rc
        ;;
    env)
        echo "export LAB_REDIS_PORT=$REDIS_PORT LAB_PG_PORT=$PG_PORT LAB_DIR=$LAB_DIR LAB_APP_PORT=$(app_port) PM2_HOME=$LAB_DIR/pm2"
        ;;
    *) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
