# Shared helpers for benches/compare/run.sh and benches/reliability/run.sh.
# Sourced, not run. Expects REPO (the repository root) and PW (the
# poortwachter binary) to be set by the caller.

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# A free TCP port on loopback (bound and released; good enough for a bench).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_port PORT [SECONDS]: until something accepts on 127.0.0.1:PORT.
wait_port() {
  local port=$1 secs=${2:-30} i
  for ((i = 0; i < secs * 10; i++)); do
    (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# Resident set size of a process in KiB (VmRSS), and its peak (VmHWM).
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# Sum of VmRSS over a process and its direct children (nginx master + workers).
rss_tree_kib() {
  local total=0 p
  for p in "$1" $(pgrep -P "$1"); do total=$((total + $(rss_kib "$p"))); done
  echo "$total"
}

# The ONE place that registers pupils in a casusoverleg (case binding).
#   register_cases CONFIG OVERLEG ORG ROLE PUPIL...   (ORG/ROLE: a role with may_register_cases)
# After case binding is merged, the policies deny requests about a pupil who
# is not registered (aangemeld) in the overleg; before that there is no
# `cases` command and this does nothing. Every pupil a script requests goes
# through here, before the gateway starts.
register_cases() {
  local cfg=$1 overleg=$2 org=$3 role=$4 pupil
  shift 4
  if ! "$PW" cases --help >/dev/null 2>&1; then
    return 0
  fi
  for pupil in "$@"; do
    "$PW" cases register --config "$cfg" --overleg "$overleg" --leerling "$pupil" \
      --door "$org" --rol "$role" --referentie "bench-$overleg-$pupil" >/dev/null ||
      { log "cases register failed for $overleg/$pupil"; return 1; }
  done
}

# PostgreSQL on the shared server (127.0.0.1:5432, trust auth): a fresh
# database per run, dropped afterwards. Never stops that server.
PG_ADMIN=${POORTWACHTER_BENCH_PG:-postgres://postgres@127.0.0.1:5432/test}
pg_create_db() { # NAME -> prints its URL
  psql "$PG_ADMIN" -qAtc "CREATE DATABASE $1" >/dev/null && echo "${PG_ADMIN%/*}/$1"
}
pg_drop_db() {
  psql "$PG_ADMIN" -qAtc "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null 2>&1 || true
}

# A private, throwaway PostgreSQL cluster (for tests that stop or kill the
# database server): initdb in DIR, listening on 127.0.0.1:PORT only, run as
# the postgres user when we are root. pg_private_stop DIR [MODE] stops it.
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
pg_private_init() { # DIR PORT
  local dir=$1 port=$2 bin
  bin=$(pg_bin)
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust >/dev/null
  cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
fsync = on
synchronous_commit = on
EOF
}
pg_private_start() { # DIR
  as_pg "$(pg_bin)/pg_ctl" -D "$1/data" -l "$1/server.log" -w -t 60 start >/dev/null
}
pg_private_stop() { # DIR [fast|immediate]
  as_pg "$(pg_bin)/pg_ctl" -D "$1/data" -m "${2:-fast}" -w -t 60 stop >/dev/null 2>&1 || true
}
