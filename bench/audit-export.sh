#!/usr/bin/env bash
# A million audit rows on a release build on SQLite, sampling the provider's resident memory
# throughout: its sealing task chaining them, then one export streaming them all as CSV.
# Loopback only; stops everything it started. Usage: bench/audit-export.sh [rows]
set -euo pipefail
rows=${1:-1000000}
cd "$(dirname "$0")/.."
source bench/lib.sh
cargo build --release --quiet -p provider
work=$(mktemp -d)
bench_bind
bench_secrets
export DATABASE_URL="sqlite://$work/bench.db?mode=rwc" LOG_FORMAT=json RUST_LOG=warn
./target/release/provider serve > "$work/provider.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT
bench_wait_ready

secret=$(curl -fsS -H "x-admin-secret: $ADMIN_SECRET" -H 'content-type: application/json' \
  -d '{"id":"bench"}' "$base/admin/tenants" | python3 -c 'import json,sys; print(json.load(sys.stdin)["admin_secret"])')

# Rows as the token endpoint writes them, straight into the table (a bench-only writer).
python3 - "$work/bench.db" "$rows" <<'PY'
import sqlite3, sys, time, uuid
db, n = sys.argv[1], int(sys.argv[2])
con = sqlite3.connect(db, timeout=30)
start = int(time.time() * 1000) - n
def rows():
    for i in range(n):
        jti = uuid.uuid4().hex
        yield ("bench", start + i, "token.issued", "client-%d" % (i % 10), None, "127.0.0.1",
               "bench/1.0", str(uuid.uuid4()),
               '{"aud":["https://api.example"],"grant_type":"client_credentials","jti":"%s","scope":"read"}' % jti)
con.executemany("INSERT INTO audit_events (tenant_id, occurred_at_ms, event, client_id, user_id, ip,"
                " user_agent, request_id, details) VALUES (?,?,?,?,?,?,?,?,?)", rows())
con.commit()
PY

rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
sample() { # samples VmRSS (KiB) every 50 ms while $1 runs; prints the peak
  local peak=0 r
  while kill -0 "$1" 2>/dev/null; do r=$(rss); (( r > peak )) && peak=$r; sleep 0.05; done
  echo "$peak"
}
idle=$(rss)
url="$base/a/bench/admin/audit/export"
# The provider's sealing task (once a second) chains the backlog; wait for it, sampling memory.
t0=$(date +%s.%N)
python3 - "$work/bench.db" <<'PY' &
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], timeout=30)
while con.execute("SELECT COUNT(*) FROM audit_events WHERE chain_seq IS NULL").fetchone()[0]:
    time.sleep(0.2)
PY
seal_peak=$(sample $!)
t1=$(date +%s.%N)
curl -fsS -H "x-admin-secret: $secret" "$url?from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z" -o "$work/export.csv" &
export_peak=$(sample $!)
t2=$(date +%s.%N)
lines=$(($(wc -l < "$work/export.csv") - 1))
size=$(du -m "$work/export.csv" | cut -f1)
verify_start=$(date +%s.%N)
./target/release/provider audit verify --tenant bench --file "$work/export.csv" | tail -1
verify_end=$(date +%s.%N)

echo "rows inserted:        $rows"
echo "rows exported:        $lines ($size MB of CSV)"
echo "resident memory idle: $((idle / 1024)) MB"
echo "peak while sealing:   $((seal_peak / 1024)) MB ($(echo "$t1 - $t0" | bc) s)"
echo "peak while exporting: $((export_peak / 1024)) MB ($(echo "$t2 - $t1" | bc) s)"
echo "verify of the file:   $(echo "$verify_end - $verify_start" | bc) s"
