#!/usr/bin/env bash
# The local lab: a real redis-server and PostgreSQL 15 on loopback, data under .lab/.
#   lab/lab.sh up       start both (seeding them the first time), the sample app under pm2, and
#                       the monitoring: Prometheus, Alertmanager and the node, Redis and
#                       PostgreSQL exporters (Debian's packages); harmless when running
#   lab/lab.sh seed     put the canonical lab data back (Redis db 0 of the lab, payment_sandbox,
#                       logs, certificates; no backups);
#                       a running sample app is restarted, so that its own queue exists again
#   lab/lab.sh down     stop everything; --purge also removes .lab/
#   lab/lab.sh redis-stop | redis-start   Redis alone (SHUTDOWN SAVE; start with the lab's settings)
#   lab/lab.sh status   what runs (exit 0 when both are up, 3 otherwise)
#   lab/lab.sh env      the ports and paths, as shell exports
# LAB_REDIS_PORT (16379), LAB_PG_PORT (15432) and LAB_DIR (.lab) override the defaults; `up`
# remembers the ports in $LAB_DIR/redis.port and $LAB_DIR/pg.port, used when they are not set.
# Monitoring (docs/monitoring.md): LAB_PROM_PORT (19090), LAB_AM_PORT (19093), LAB_NODE_EXPORTER_PORT
# (19100), LAB_REDIS_EXPORTER_PORT (19121), LAB_PG_EXPORTER_PORT (19187) and LAB_EDA_PORT (19095,
# where Alertmanager sends to the rulebook's event source), remembered in $LAB_DIR/<name>.port.
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
    stop_monitoring
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
    free_port
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
        APP_METRICS_QUEUES=ai-analysis,notifications,card-generation,email \
        CLOUDWATCH_LOG_GROUP=iamenu-ecosystem-logs CLOUDWATCH_REGION=eu-west-1 CLOUDWATCH_LOG_LEVEL=info \
        OAUTH_CLIENT_ID=lab-client OAUTH_CLIENT_SECRET=lab-oauth-Secret-42 SESSION_SECRET=lab-session-Secret-42 \
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

# ---- Monitoring (issue 18) -------------------------------------------------------------------
# Debian's prometheus, prometheus-alertmanager and exporters, each a process of this lab (pid
# file and log under $LAB_DIR/<name>/), listening on 127.0.0.1 only. Intervals (lab only):
# scrape and rule evaluation every 5 s; Alertmanager group_wait 5 s, group_interval 10 s.
# Prometheus loads the collection's rules (extensions/prometheus/rules, copied to
# $LAB_DIR/prometheus/rules/) and sends to Alertmanager, which routes the collection's alerts
# (label oncall="runbooks") to the rulebook's event source (extensions/eda) on LAB_EDA_PORT with
# the bearer token in $LAB_DIR/eda.token (mode 0600; ONCALL_EDA_TOKEN="$(cat $LAB_DIR/eda.token)").
# A port free now and outside the ephemeral range, where no client connection can take it before
# the daemon binds it (lab/free_port.py says why).
free_port() { python3 "$ROOT/lab/free_port.py"; }
# mon_port NAME VALUE_FROM_ENV DEFAULT: the environment's, else the remembered one, else the
# default for the default lab and a free port for any other.
mon_port() {
    if [[ -n "$2" ]]; then echo "$2"; return; fi
    local p=""
    [[ -f "$LAB_DIR/$1.port" ]] && p="$(cat "$LAB_DIR/$1.port")"
    if [[ "$p" =~ ^[0-9]+$ ]]; then echo "$p"; return; fi
    if [[ "$REDIS_PORT" == 16379 ]]; then echo "$3"; return; fi
    free_port
}
# Each free port is drawn at random and checked free, but none is bound until its daemon starts:
# two draws of one `up` could give the same port (a fresh-clone CI run: pg-exporter and prometheus
# both on one port), so a draw equal to one this run already holds is drawn again.
mon_pick() {
    local p
    p=$(mon_port "$2" "$3" "$4")
    while [[ -z "$3" && " $MON_TAKEN " == *" $p "* ]]; do p=$(free_port); done
    printf -v "$1" '%s' "$p"
    MON_TAKEN+=" $p"
}
mon_ports() {
    MON_TAKEN="${REDIS_PORT:-} ${PG_PORT:-}"
    mon_pick PROM_PORT prometheus "${LAB_PROM_PORT:-}" 19090
    mon_pick AM_PORT alertmanager "${LAB_AM_PORT:-}" 19093
    mon_pick NODE_EXPORTER_PORT node-exporter "${LAB_NODE_EXPORTER_PORT:-}" 19100
    mon_pick REDIS_EXPORTER_PORT redis-exporter "${LAB_REDIS_EXPORTER_PORT:-}" 19121
    mon_pick PG_EXPORTER_PORT pg-exporter "${LAB_PG_EXPORTER_PORT:-}" 19187
    mon_pick EDA_PORT eda "${LAB_EDA_PORT:-}" 19095
}
MON_BINS=(prometheus prometheus-alertmanager prometheus-node-exporter prometheus-redis-exporter prometheus-postgres-exporter)
mon_installed() { local b; for b in "${MON_BINS[@]}"; do command -v "$b" >/dev/null || return 1; done; }
# The pid in $LAB_DIR/NAME/NAME.pid, if that process still runs BIN (pids get reused).
daemon_pid() {
    local f="$LAB_DIR/$1/$1.pid" pid
    [[ -f "$f" ]] || return 1
    pid="$(cat "$f")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == "$(readlink -f "$(command -v "$2")")" ]] && echo "$pid"
}
answers() { curl -fsS -m 2 -o /dev/null "$1" 2>/dev/null; }
# start_daemon NAME BIN READY_URL ARGS...: start BIN in the background unless this lab's one runs.
start_daemon() {
    local name=$1 bin=$2 url=$3 addr
    shift 3
    addr="${url#http://}" && addr="${addr%%/*}"
    if daemon_pid "$name" "$bin" >/dev/null && answers "$url"; then say "$name already up on $addr"; return; fi
    daemon_pid "$name" "$bin" >/dev/null && die "this lab's $name (pid $(daemon_pid "$name" "$bin")) does not answer $url: lab/lab.sh down first"
    answers "$url" && die "$url answers but is not this lab's $name: set its LAB_*_PORT"
    mkdir -p "$LAB_DIR/$name"
    setsid "$bin" "$@" >>"$LAB_DIR/$name/$name.log" 2>&1 </dev/null &
    echo $! >"$LAB_DIR/$name/$name.pid"
    for _ in $(seq 100); do answers "$url" && break; sleep 0.1; done
    answers "$url" || die "$name did not answer $url: see $LAB_DIR/$name/$name.log"
    say "$name up on $addr (pid $(cat "$LAB_DIR/$name/$name.pid"))"
}
stop_daemon() {
    local pid
    pid=$(daemon_pid "$1" "$2") || return 0
    kill "$pid" 2>/dev/null || true
    gone "$pid" || kill -9 "$pid" 2>/dev/null || true
}

# Write FILE from stdin only when its content changes; returns 0 when it changed.
write_if_changed() {
    local tmp
    tmp="$(mktemp "$1.XXXXXX")"
    cat >"$tmp"
    if [[ -f "$1" ]] && cmp -s "$tmp" "$1"; then rm -f "$tmp"; return 1; fi
    mv -f "$tmp" "$1"
}

prometheus_config() {
    cat <<CONF
# Written by lab/lab.sh up (regenerated at every up): the lab's Prometheus.
global:
  scrape_interval: 5s
  scrape_timeout: 4s
  evaluation_interval: 5s
rule_files:
  - $LAB_DIR/prometheus/rules/*.yml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:$AM_PORT']
scrape_configs:
  - job_name: prometheus
    static_configs: [{targets: ['127.0.0.1:$PROM_PORT']}]
  - job_name: alertmanager
    static_configs: [{targets: ['127.0.0.1:$AM_PORT']}]
  - job_name: app
    static_configs: [{targets: ['127.0.0.1:$(app_port)']}]
  - job_name: node
    static_configs: [{targets: ['127.0.0.1:$NODE_EXPORTER_PORT']}]
  - job_name: redis
    static_configs: [{targets: ['127.0.0.1:$REDIS_EXPORTER_PORT']}]
  - job_name: postgres
    static_configs: [{targets: ['127.0.0.1:$PG_EXPORTER_PORT']}]
CONF
}

alertmanager_config() {
    cat <<CONF
# Written by lab/lab.sh up (regenerated at every up): the lab's Alertmanager. The collection's
# alerts (oncall="runbooks") go to the rulebook's event source; roles/monitoring installs the
# same route into an existing Alertmanager.
route:
  receiver: lab-default
  group_by: [alertname]
  group_wait: 5s
  group_interval: 10s
  repeat_interval: 1h
  routes:
    - receiver: oncall-runbooks
      matchers: ['oncall="runbooks"']
      group_by: [alertname, instance]
      continue: true
receivers:
  - name: lab-default
  - name: oncall-runbooks
    webhook_configs:
      - url: http://127.0.0.1:$EDA_PORT/alerts
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials_file: $LAB_DIR/eda.token
CONF
}

start_monitoring() {
    if ! mon_installed; then
        say "monitoring skipped: ${MON_BINS[*]} are not all installed (scripts/setup installs them)"
        return 0
    fi
    mon_ports
    mkdir -p "$LAB_DIR/prometheus/rules" "$LAB_DIR/alertmanager"
    if [[ ! -s "$LAB_DIR/eda.token" ]]; then
        (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$LAB_DIR/eda.token")
    fi
    # the exporters first, so that Prometheus's first scrape finds them
    start_daemon node-exporter prometheus-node-exporter "http://127.0.0.1:$NODE_EXPORTER_PORT/metrics" \
        --web.listen-address="127.0.0.1:$NODE_EXPORTER_PORT" \
        --collector.textfile.directory="$LAB_DIR/node-exporter"
    start_daemon redis-exporter prometheus-redis-exporter "http://127.0.0.1:$REDIS_EXPORTER_PORT/metrics" \
        -redis.addr "redis://127.0.0.1:$REDIS_PORT" -web.listen-address "127.0.0.1:$REDIS_EXPORTER_PORT"
    DATA_SOURCE_NAME="postgresql://postgres@127.0.0.1:$PG_PORT/postgres?sslmode=disable" \
        start_daemon pg-exporter prometheus-postgres-exporter "http://127.0.0.1:$PG_EXPORTER_PORT/metrics" \
        --web.listen-address="127.0.0.1:$PG_EXPORTER_PORT"
    local am_changed=0 prom_changed=0
    alertmanager_config | write_if_changed "$LAB_DIR/alertmanager/alertmanager.yml" && am_changed=1
    prometheus_config | write_if_changed "$LAB_DIR/prometheus/prometheus.yml" && prom_changed=1
    cp "$ROOT/extensions/prometheus/rules/oncall.rules.yml" "$LAB_DIR/prometheus/rules/oncall.rules.yml.new"
    if cmp -s "$LAB_DIR/prometheus/rules/oncall.rules.yml.new" "$LAB_DIR/prometheus/rules/oncall.rules.yml"; then
        rm -f "$LAB_DIR/prometheus/rules/oncall.rules.yml.new"
    else
        mv -f "$LAB_DIR/prometheus/rules/oncall.rules.yml.new" "$LAB_DIR/prometheus/rules/oncall.rules.yml"
        prom_changed=1
    fi
    # --cluster.listen-address= : no gossip port (a lab has one Alertmanager)
    start_daemon alertmanager prometheus-alertmanager "http://127.0.0.1:$AM_PORT/-/ready" \
        --config.file="$LAB_DIR/alertmanager/alertmanager.yml" --storage.path="$LAB_DIR/alertmanager/data" \
        --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address=
    start_daemon prometheus prometheus "http://127.0.0.1:$PROM_PORT/-/ready" \
        --config.file="$LAB_DIR/prometheus/prometheus.yml" --storage.tsdb.path="$LAB_DIR/prometheus/data" \
        --storage.tsdb.retention.time=2d --web.listen-address="127.0.0.1:$PROM_PORT" --web.enable-lifecycle
    # a running server with a changed configuration reloads it (a new one read it at start)
    if ((am_changed)); then curl -fsS -m 5 -X POST "http://127.0.0.1:$AM_PORT/-/reload" >/dev/null || die "alertmanager did not reload $LAB_DIR/alertmanager/alertmanager.yml: see $LAB_DIR/alertmanager/alertmanager.log"; fi
    if ((prom_changed)); then curl -fsS -m 5 -X POST "http://127.0.0.1:$PROM_PORT/-/reload" >/dev/null || die "prometheus did not reload $LAB_DIR/prometheus/prometheus.yml: see $LAB_DIR/prometheus/prometheus.log"; fi
    local n
    for n in prometheus alertmanager node-exporter redis-exporter pg-exporter eda; do
        case $n in
            prometheus) echo "$PROM_PORT" ;; alertmanager) echo "$AM_PORT" ;;
            node-exporter) echo "$NODE_EXPORTER_PORT" ;; redis-exporter) echo "$REDIS_EXPORTER_PORT" ;;
            pg-exporter) echo "$PG_EXPORTER_PORT" ;; eda) echo "$EDA_PORT" ;;
        esac >"$LAB_DIR/$n.port"
    done
}

stop_monitoring() {
    stop_daemon prometheus prometheus
    stop_daemon alertmanager prometheus-alertmanager
    stop_daemon node-exporter prometheus-node-exporter
    stop_daemon redis-exporter prometheus-redis-exporter
    stop_daemon pg-exporter prometheus-postgres-exporter
}
# ---- end of the monitoring -----------------------------------------------------------------

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
        start_monitoring
        ;;
    seed) seed ;;
    # Redis alone (the game day, playbooks/game_day.yml): SHUTDOWN SAVE as runbook 004's chaos
    # test does, and starting it again with the lab's settings (its dump brings the data back).
    redis-stop)
        if pid=$(redis_pid); then
            redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown save >/dev/null 2>&1 || true
            gone "$pid" || die "redis (pid $pid) did not stop within 5 s"
        fi
        say "redis down" ;;
    redis-start) start_redis ;;
    down) down "${2:-}" ;;
    status)
        rc=0
        if redis_up; then say "redis up on 127.0.0.1:$REDIS_PORT"; else say "redis down"; rc=3; fi
        if pg_up; then say "postgresql up on 127.0.0.1:$PG_PORT"; else say "postgresql down"; rc=3; fi
        if app_healthy; then say "app up on 127.0.0.1:$(app_port)"; else say "app down"; rc=3; fi
        if mon_installed; then
            mon_ports
            if daemon_pid prometheus prometheus >/dev/null && answers "http://127.0.0.1:$PROM_PORT/-/ready"; then
                say "prometheus up on 127.0.0.1:$PROM_PORT"
            else say "prometheus down"; rc=3; fi
            if daemon_pid alertmanager prometheus-alertmanager >/dev/null && answers "http://127.0.0.1:$AM_PORT/-/ready"; then
                say "alertmanager up on 127.0.0.1:$AM_PORT"
            else say "alertmanager down"; rc=3; fi
        fi
        exit $rc
        ;;
    env)
        mon_ports
        echo "export LAB_REDIS_PORT=$REDIS_PORT LAB_PG_PORT=$PG_PORT LAB_DIR=$LAB_DIR LAB_APP_PORT=$(app_port) PM2_HOME=$LAB_DIR/pm2"
        echo "export LAB_PROM_PORT=$PROM_PORT LAB_AM_PORT=$AM_PORT LAB_NODE_EXPORTER_PORT=$NODE_EXPORTER_PORT LAB_REDIS_EXPORTER_PORT=$REDIS_EXPORTER_PORT LAB_PG_EXPORTER_PORT=$PG_EXPORTER_PORT LAB_EDA_PORT=$EDA_PORT LAB_EDA_TOKEN_FILE=$LAB_DIR/eda.token"
        ;;
    *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
