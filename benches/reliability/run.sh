#!/usr/bin/env bash
# Reliability runs (issue 4), bounded in time (TIMEOUT, default 40 min):
#   - kill -9 of the real gateway under load: SQLITE_CYCLES (default 200) on
#     SQLite and PG_CYCLES (default 50) on PostgreSQL: 0 acknowledged-but-
#     missing audit records, chains verify;
#   - ABORTS (default 2000) client aborts mid-request: 0 half records;
#   - the PostgreSQL audit store stopped under load: 100% 503, 0 bytes of
#     pupil data, service resumes when it is back;
#   - trail vs clients (tests/trail_truth.rs): TRAIL_ROUNDS (default 60)
#     store stalls per store around the commit deadline with random request
#     mixes; every client answer compared with the trail and the registers:
#     0 contradictions.
#
#   bash benches/reliability/run.sh
#
# PostgreSQL runs against a PRIVATE throwaway cluster (initdb in a temp dir,
# its own port), never against the shared server on 5432, because one test
# stops the server. The tests are the ones in tests/crash.rs (debug build,
# like CI); this script only raises their counts and provides the cluster.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO"
SQLITE_CYCLES=${SQLITE_CYCLES:-200}
PG_CYCLES=${PG_CYCLES:-50}
ABORTS=${ABORTS:-2000}
TRAIL_ROUNDS=${TRAIL_ROUNDS:-60}
TIMEOUT=${TIMEOUT:-2400}
PW=$REPO/target/debug/poortwachter
# shellcheck source=../lib.sh
. "$REPO/benches/lib.sh"

PGDIR=$(mktemp -d /tmp/pw-reliability-pg.XXXXXX)
PGPORT=$(free_port)
cleanup() {
  pg_private_stop "$PGDIR" immediate
  rm -rf "$PGDIR"
}
trap cleanup EXIT
log "private PostgreSQL cluster on 127.0.0.1:$PGPORT in $PGDIR"
pg_private_init "$PGDIR" "$PGPORT"
pg_private_start "$PGDIR"

log "building the tests (debug)"
cargo test --locked --no-run --test crash --test trail_truth 2>&1 | tail -1 >&2

export POORTWACHTER_TEST_PG="postgres://postgres@127.0.0.1:$PGPORT/postgres"
export POORTWACHTER_PRIVATE_PG_DIR=$PGDIR
export POORTWACHTER_CRASH_CYCLES_SQLITE=$SQLITE_CYCLES
export POORTWACHTER_CRASH_CYCLES_PG=$PG_CYCLES
export POORTWACHTER_CLIENT_ABORTS=$ABORTS
export TRAIL_ROUNDS
LOG=$(mktemp /tmp/pw-reliability.XXXXXX.log)
log "running (log: $LOG)"
started=$(date +%s)
set +e
timeout "$TIMEOUT" cargo test --locked --test crash -- --include-ignored --nocapture --test-threads=1 >"$LOG" 2>&1
rc=$?
if [ $rc -eq 0 ]; then
  timeout "$TIMEOUT" cargo test --locked --test trail_truth -- --nocapture --test-threads=1 >>"$LOG" 2>&1
  rc=$?
fi
set -e
echo
echo "Reliability run $(date -u +%Y-%m-%dT%H:%MZ), $(($(date +%s) - started)) s, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg):"
grep -oE 'reliability: .*' "$LOG" | sed 's/^reliability: /- /'
grep -E '^test result' "$LOG"
if [ $rc -ne 0 ]; then
  echo "FAILED (exit $rc; timeout is exit 124); see $LOG"
  grep -E 'panicked|assertion' -A6 "$LOG" | head -40
fi
exit $rc
