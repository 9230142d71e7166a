#!/usr/bin/env bash
# A backlog of audit rows on PostgreSQL, and the time the provider's sealing task takes to chain
# it: the catch-up after the provider was down while other replicas wrote. Rows go straight into
# the table (a bench-only writer), a quarter of them to the `_system` trail, each by a
# transaction of its own or PER_TX to a transaction. Loopback only; stops what it started and
# drops its database. Usage: bench/audit-seal-postgres.sh [rows]; PER_TX (1), TEST_DATABASE_URL,
# PROVIDER_BIN (another build to measure; default: this tree's, built in release mode).
set -euo pipefail
rows=${1:-100000}
per_tx=${PER_TX:-1}
server=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
cd "$(dirname "$0")/.."
source bench/lib.sh
bin=${PROVIDER_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet -p provider
  bin=./target/release/provider
fi
db="bench_seal_$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
psql "$server" -qc "CREATE DATABASE $db"
url="${server%/*}/$db"
bench_bind
bench_secrets
export PUBLIC_URL="$base" DATABASE_URL="$url" LOG_FORMAT=json RUST_LOG=warn
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  psql "$server" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"
}
trap cleanup EXIT
serve() {
  "$bin" serve > /dev/null 2>&1 &
  pid=$!
  bench_wait_ready
}
stop() { kill "$pid"; wait "$pid" || true; pid=; }
unsealed="SELECT COUNT(*) FROM audit_events e
  WHERE NOT EXISTS (SELECT 1 FROM audit_seals s WHERE s.event_id = e.id)"
wait_sealed() { while [ "$(psql "$url" -Atc "$unsealed")" != 0 ]; do sleep 0.1; done; }

# The schema, a tenant and its chains, then the provider stops while the backlog is written.
serve
curl -fsS -H "x-admin-secret: $ADMIN_SECRET" -H 'content-type: application/json' \
  -d '{"id":"bench"}' "$base/admin/tenants" > /dev/null
wait_sealed
stop
psql "$url" -q -c "SET synchronous_commit = off" -c "DO \$\$ BEGIN FOR i IN 1..$rows LOOP
  INSERT INTO audit_events (tenant_id, occurred_at_ms, event, client_id, ip, user_agent,
    request_id, details)
  VALUES (CASE WHEN i % 4 = 0 THEN '_system' ELSE 'bench' END, 1700000000000 + i,
    'token.issued', 'client-' || (i % 10), '127.0.0.1', 'bench/1.0', md5(i::text),
    '{\"grant_type\":\"client_credentials\",\"scope\":\"read\"}');
  IF i % $per_tx = 0 THEN COMMIT; END IF; END LOOP; END \$\$" -c "ANALYZE"

t0=$(date +%s.%N)
serve
wait_sealed
t1=$(date +%s.%N)
echo "rows=$rows per_tx=$per_tx sealed in $(python3 -c "print(f'{$t1 - $t0:.2f}')") s (from start, $(nproc) cores)"
