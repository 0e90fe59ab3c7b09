#!/usr/bin/env bash
# Side-by-side benchmark: the gateway (release build, policies, filtering,
# durable audit) against nginx as a plain mTLS reverse proxy in front of the
# same static bron, with the bron itself as the floor. See benches/RESULTS.md.
#
#   bash benches/compare/run.sh [scenario...]
#
# Scenarios (default: all): keepalive newconn rate1000 doc200 policy50k rss
# instructions (the gateway under valgrind's callgrind: instructions per
# request, a figure the machine's load does not change; valgrind from Debian)
# Environment: STORES="sqlite postgres" (gateway audit stores; also
# "postgres-unix": the same server over its Unix socket, and "sqlite-tmpfs":
# a diagnostic, NOT durable store on /dev/shm; any store with the suffix
# "-nocache", e.g. "sqlite-nocache": registers.cache_entries = 0, every
# request reads the registers from the store; the suffix "-alt", e.g.
# "sqlite-alt": the gateway binary ALT_BIN instead of this build, for a
# side-by-side of two builds in one run), DURATION=10
# (measured seconds per target), WARMUP=2, CONCURRENCY=64, RATE=1000,
# IDLE_CONNS=1000, RESULTS=<file for the JSON lines> (default in the work dir).
# Needs: nginx (installed with apt-get when missing), PostgreSQL on
# 127.0.0.1:5432 with trust auth for the postgres store (a fresh database per
# gateway run, dropped afterwards).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO"
STORES=${STORES:-sqlite postgres}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONCURRENCY=${CONCURRENCY:-64}
RATE=${RATE:-1000}
IDLE_CONNS=${IDLE_CONNS:-1000}
SCENARIOS=${*:-keepalive newconn rate1000 doc200 policy50k rss instructions}
GW_WRAP= # a command the gateway runs under (callgrind for `instructions`)

PW=$REPO/target/release/poortwachter
LG=$REPO/target/release/examples/loadgen
# shellcheck source=../lib.sh
. "$REPO/benches/lib.sh"

if ! command -v nginx >/dev/null; then
  log "installing nginx (Debian package)"
  apt-get update -qq && apt-get install -y -qq nginx >/dev/null
  # The package starts a system nginx on port 80; this script runs its own.
  service nginx stop >/dev/null 2>&1 || true
fi
log "building (release)"
cargo build --release --locked --quiet --bin poortwachter --example loadgen

ulimit -n 20000 2>/dev/null || true
WORK=$(mktemp -d /tmp/pw-compare.XXXXXX)
chmod 755 "$WORK" # nginx workers run as www-data
RESULTS=${RESULTS:-$WORK/results.jsonl}
: >"$RESULTS"
GW_PID=
PG_DB=
SHM_DIR=
cleanup() {
  [ -n "$GW_PID" ] && kill "$GW_PID" 2>/dev/null && wait "$GW_PID" 2>/dev/null
  for pidfile in "$WORK"/nginx-*/nginx.pid; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null
  done
  [ -n "$PG_DB" ] && pg_drop_db "$PG_DB"
  [ -n "$SHM_DIR" ] && rm -rf "$SHM_DIR"
  return 0
}
trap cleanup EXIT

log "fixtures and PKIs in $WORK"
"$LG" fixtures --out "$WORK/fx" --policies "$REPO/policies" >&2
"$PW" certs dev --dir "$WORK/pki-example" --policies "$REPO/policies" >/dev/null
"$PW" certs dev --dir "$WORK/pki-synth" --policies "$WORK/fx/policies-synth-small" >/dev/null

# --- nginx: the static bron (plain HTTP) and the plain mTLS reverse proxy ---
# NAME PORT: writes $WORK/nginx-NAME/nginx.conf with the server block from stdin.
nginx_start() {
  local name=$1 dir=$WORK/nginx-$1
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<EOF
worker_processes auto;
worker_rlimit_nofile 20000;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $dir/tmp;
  proxy_temp_path $dir/tmp;
  fastcgi_temp_path $dir/tmp;
  uwsgi_temp_path $dir/tmp;
  scgi_temp_path $dir/tmp;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
$(cat)
}
EOF
  nginx -c "$dir/nginx.conf" -p "$dir"
}
# Master and worker PIDs of an nginx instance, comma-separated.
nginx_pids() {
  local m
  m=$(cat "$WORK/nginx-$1/nginx.pid")
  echo "$m$(pgrep -P "$m" | sed 's/^/,/' | tr -d '\n')"
}
nginx_stop() {
  local pidfile=$WORK/nginx-$1/nginx.pid
  if [ -f "$pidfile" ]; then
    kill -QUIT "$(cat "$pidfile")" 2>/dev/null || true
    for _ in $(seq 50); do [ -f "$pidfile" ] || break; sleep 0.1; done
  fi
}

UP=$(free_port)
nginx_start bron <<EOF
  server {
    listen 127.0.0.1:$UP;
    root $WORK/fx/docroot;
    default_type application/json;
    types { }
    location / { try_files \$uri =404; }
  }
EOF
wait_port "$UP" || { log "static bron did not start"; exit 1; }

PX=$(free_port)
proxy_start() { # PKI dir
  local pki=$1
  nginx_start proxy <<EOF
  upstream bron { server 127.0.0.1:$UP; keepalive 64; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$PX ssl;
    ssl_protocols TLSv1.3;
    ssl_certificate $pki/gateway.pem;
    ssl_certificate_key $pki/gateway-key.pem;
    ssl_client_certificate $pki/ca.pem;
    ssl_crl $pki/crl.pem;
    ssl_verify_client on;
    ssl_verify_depth 2;
    # Like the gateway: no session resumption, every connection verifies the certificate.
    ssl_session_cache off;
    ssl_session_tickets off;
    location / {
      proxy_pass http://bron;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Client-DN \$ssl_client_s_dn;
    }
  }
EOF
  wait_port "$PX" || { log "nginx proxy did not start"; exit 1; }
}

# --- the gateway ---
GW=$(free_port)
# gateway_start POLICY_DIR PKI_DIR STORE -> sets GW_PID, GW_CFG; registers the scenario's pupil.
gateway_start() {
  local pol=$1 pki=$2 store=${3%-nocache} dir url b registers= bin=$PW
  [ "$3" != "$store" ] && registers=$'\n[registers]\ncache_entries = 0\n'
  if [ "${store%-alt}" != "$store" ]; then store=${store%-alt} bin=${ALT_BIN:?ALT_BIN names the other build}; fi
  dir=$(mktemp -d "$WORK/gw.XXXXXX")
  "$PW" audit keygen --dir "$dir/keys" >/dev/null
  case $store in
    sqlite) url="sqlite://$dir/audit.db" ;;
    # The same PostgreSQL server over its Unix socket (no TCP, so no Nagle).
    postgres-unix)
      PG_DB="pwbench_$(date +%s)_$RANDOM"
      pg_create_db "$PG_DB" >/dev/null
      url="postgres://postgres@localhost/$PG_DB?host=${PG_SOCKET_DIR:-/var/run/postgresql}" ;;
    # Diagnostic only, NOT durable: SQLite on tmpfs, where fsync costs nothing.
    # Shows how much of the gap to nginx is the durable commit.
    sqlite-tmpfs)
      [ -n "$SHM_DIR" ] && rm -rf "$SHM_DIR"
      SHM_DIR=$(mktemp -d /dev/shm/pw-compare.XXXXXX)
      url="sqlite://$SHM_DIR/audit.db" ;;
    postgres)
      PG_DB="pwbench_$(date +%s)_$RANDOM"
      url=$(pg_create_db "$PG_DB") ;;
  esac
  GW_CFG=$dir/poortwachter.toml
  {
    cat <<EOF
[server]
listen = "127.0.0.1:$GW"
instance = "bench-1"

[tls]
cert = "$pki/gateway.pem"
key = "$pki/gateway-key.pem"
client_ca = ["$pki/ca.pem"]
crls = ["$pki/crl.pem"]

[policy]
dir = "$pol"

[audit]
store = "$url"
pseudonym_key = "$dir/keys/pseudonym.key"
signing_key = "$dir/keys/signing.key"
$registers
[log]
filter = "warn"

[upstream.base_urls]
EOF
    for b in "$pol"/bronnen/*.toml; do
      b=$(basename "$b" .toml)
      echo "\"$b\" = \"http://127.0.0.1:$UP/$b\""
    done
  } >"$GW_CFG"
  register_cases "$GW_CFG" "$OVERLEG" "$REG_ORG" "$REG_ROLE" "$PUPIL"
  # shellcheck disable=SC2086 # GW_WRAP is a command with its arguments
  $GW_WRAP "$bin" serve --config "$GW_CFG" 2>"$dir/gateway.log" &
  GW_PID=$!
  local i
  for ((i = 0; i < 600; i++)); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$pki/ca.pem" --cert "$pki/$ORG.pem" \
      --key "$pki/$ORG-key.pem" -H "X-Doelbinding: $PURPOSE" "https://localhost:$GW$GW_PATH")" = 200 ]; then
      return 0
    fi
    kill -0 "$GW_PID" 2>/dev/null || break
    sleep 0.1
  done
  log "gateway did not answer 200 on $GW_PATH"; tail -20 "$dir/gateway.log" >&2; exit 1
}

# gateway_stop: SIGTERM (drains, final checkpoint), then verifies the chain and reports its size.
gateway_stop() {
  kill "$GW_PID" && wait "$GW_PID" || true
  GW_PID=
  local out
  out=$("$PW" audit verify --config "$GW_CFG" 2>&1) || { log "AUDIT VERIFY FAILED: $out"; }
  log "audit: $(echo "$out" | head -1)"
  if [ -n "$PG_DB" ]; then pg_drop_db "$PG_DB"; PG_DB=; fi
  # The audit database of a run is hundreds of MB; the figures are in $RESULTS.
  rm -rf "$(dirname "$GW_CFG")"
}

# scenario_request example|synth: what is requested, by whom (one pupil).
scenario_request() {
  PUPIL=L1001
  case $1 in
    example)
      POL=$REPO/policies PKI=$WORK/pki-example
      ORG=wij-groningen ROLE=jeugdwet OVERLEG=aoj-vo-noorderlicht PURPOSE=afstemming-ondersteuning
      REG_ORG=vo-noorderlicht REG_ROLE=school
      UP_PATH=/las-noorderlicht/leerlingen/$PUPIL/verzuim ;;
    synth-small | synth-50k)
      POL=$WORK/fx/policies-$1 PKI=$WORK/pki-synth
      ORG=org-2-0 ROLE=r2 OVERLEG=synth-0 PURPOSE=p
      REG_ORG=bron-owner REG_ROLE=owner
      UP_PATH=/synth/leerlingen/$PUPIL ;;
  esac
  GW_PATH=/v1/$OVERLEG$UP_PATH
}

# measure SCENARIO STORE MODE: direct, nginx and gateway, one after the other.
measure() {
  local scenario=$1 store=$2 mode=$3 c=$CONCURRENCY
  local common=(--mode "$mode" --concurrency "$c" --duration "$DURATION" --warmup "$WARMUP"
    --rate "$RATE" --scenario "$scenario" --store "$store" --out "$RESULTS")
  local mtls=(--ca "$PKI/ca.pem" --cert "$PKI/$ORG.pem" --key "$PKI/$ORG-key.pem")
  "$LG" run "${common[@]}" --label direct --url "http://127.0.0.1:$UP$UP_PATH" --pids "$(nginx_pids bron)"
  "$LG" run "${common[@]}" --label nginx --url "https://localhost:$PX$UP_PATH" "${mtls[@]}" \
    --pids "$(nginx_pids proxy)"
  "$LG" run "${common[@]}" --label gateway --url "https://localhost:$GW$GW_PATH" "${mtls[@]}" \
    --header "X-Doelbinding: $PURPOSE" --pids "$GW_PID"
  log "gateway peak RSS in this run (VmHWM): $(($(hwm_kib "$GW_PID") / 1024)) MiB"
}

run_scenario() {
  local s=$1 set mode store
  case $s in
    keepalive) set=example mode=keepalive ;;
    newconn) set=example mode=newconn ;;
    rate1000) set=example mode=rate ;;
    doc200) set=synth-small mode=keepalive ;;
    policy50k) set=synth-50k mode=keepalive ;;
    rss) set=example mode=idle ;;
    instructions) set=example mode=keepalive ;;
    *) log "unknown scenario $s"; exit 2 ;;
  esac
  scenario_request "$set"
  nginx_stop proxy
  proxy_start "$PKI"
  for store in $STORES; do
    [ "$s" = rss ] && [ "${store%-alt}" != sqlite ] && continue
    log "== $s, gateway audit store $store"
    if [ "$s" = instructions ]; then
      GW_WRAP="valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=$WORK/callgrind-$store.%p"
    fi
    gateway_start "$POL" "$PKI" "$store"
    GW_WRAP=
    if [ "$s" = rss ]; then
      measure_rss
    elif [ "$s" = instructions ]; then
      measure_instructions "$store"
    else
      measure "$s" "$store" "$mode"
    fi
    gateway_stop
  done
}

# RSS of the gateway (and of nginx) with IDLE_CONNS open mTLS connections,
# each having served one request.
measure_rss() {
  local mtls=(--ca "$PKI/ca.pem" --cert "$PKI/$ORG.pem" --key "$PKI/$ORG-key.pem")
  local label port pid path base during conns out
  # Warm the gateway up first (pools, allocator) so the baseline is realistic.
  "$LG" run --mode keepalive --concurrency 8 --duration 2 --warmup 0 --scenario warm --label gateway \
    --url "https://localhost:$GW$GW_PATH" "${mtls[@]}" --header "X-Doelbinding: $PURPOSE" \
    --out "$WORK/warm.jsonl" 2>/dev/null
  for label in gateway nginx; do
    if [ $label = gateway ]; then
      port=$GW pid=$GW_PID path=$GW_PATH
    else
      port=$PX pid=$(cat "$WORK/nginx-proxy/nginx.pid") path=$UP_PATH
    fi
    base=$(rss_tree_kib "$pid")
    out=$WORK/idle-$label.log
    "$LG" idle --conns "$IDLE_CONNS" --hold 4 --url "https://localhost:$port$path" "${mtls[@]}" \
      --header "X-Doelbinding: $PURPOSE" >"$out" &
    local lg=$!
    for _ in $(seq 300); do grep -q ready "$out" && break; sleep 0.1; done
    sleep 1
    during=$(rss_tree_kib "$pid")
    conns=$(ss -Htn state established "( sport = :$port )" | wc -l)
    wait "$lg"
    log "$label: $(cat "$out"); RSS $((base / 1024)) MiB before, $((during / 1024)) MiB with $conns established connections"
    printf '{"label":"%s","idle_conns_open":%s,"rss_before_kib":%s,"rss_with_conns_kib":%s,"loadgen":"%s"}\n' \
      "$label" "$conns" "$base" "$during" "$(cat "$out")" >>"$WORK/rss.jsonl"
  done
}

# Instructions per request of the gateway (every thread: TLS, policy,
# filter, audit writer, store driver; not a PostgreSQL server's own), counted
# by callgrind only while a keep-alive load of 8 connections runs for
# DURATION seconds (no warm-up: the gateway answered the readiness probes).
measure_instructions() {
  local store=$1 out=$WORK/instr-$1.jsonl mtls=(--ca "$PKI/ca.pem" --cert "$PKI/$ORG.pem" --key "$PKI/$ORG-key.pem")
  callgrind_control -z "$GW_PID" >/dev/null
  callgrind_control -i on "$GW_PID" >/dev/null
  "$LG" run --mode keepalive --concurrency 8 --duration "$DURATION" --warmup 0 --scenario instructions \
    --store "$store" --label gateway --url "https://localhost:$GW$GW_PATH" "${mtls[@]}" \
    --header "X-Doelbinding: $PURPOSE" --out "$out"
  callgrind_control -i off "$GW_PID" >/dev/null
  callgrind_control -d "$GW_PID" >/dev/null
  local dump ir ok
  dump=$(ls -t "$WORK"/callgrind-"$store".*.1 | head -1)
  ir=$(grep -E '^totals:' "$dump" | head -1 | awk '{print $2}')
  ok=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["ok"])' "$out")
  log "gateway ($store): $ir instructions for $ok requests"
  printf '{"store":"%s","instructions":%s,"requests":%s}\n' "$store" "$ir" "$ok" >>"$WORK/instructions.jsonl"
}

log "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for s in $SCENARIOS; do run_scenario "$s"; done
nginx_stop proxy
nginx_stop bron

echo
echo "Results ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load average now $(cut -d' ' -f1-3 /proc/loadavg)):"
echo
"$LG" report --results "$RESULTS"
if [ -f "$WORK/rss.jsonl" ]; then
  echo
  echo "Memory with $IDLE_CONNS open connections:"
  echo
  echo "| server | connections open | RSS before | RSS with the connections |"
  echo "|---|---:|---:|---:|"
  while read -r line; do
    echo "$line" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("| %s | %d | %.1f MiB | %.1f MiB |" % (r["label"], r["idle_conns_open"], r["rss_before_kib"]/1024, r["rss_with_conns_kib"]/1024))'
  done <"$WORK/rss.jsonl"
fi
if [ -f "$WORK/instructions.jsonl" ]; then
  echo
  echo "Instructions per request (callgrind; keep-alive, 8 connections, the gateway's every thread):"
  echo
  echo "| store | requests | instructions | per request |"
  echo "|---|---:|---:|---:|"
  while read -r line; do
    echo "$line" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("| %s | %d | %d | %.0f |" % (r["store"], r["requests"], r["instructions"], r["instructions"]/max(r["requests"],1)))'
  done <"$WORK/instructions.jsonl"
fi
echo
echo "raw results: $RESULTS"
