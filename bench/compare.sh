#!/usr/bin/env bash
# Ours (release build, SQLite and PostgreSQL) side by side with node oidc-provider, on loopback,
# in one run; writes bench/last-run.md (copy its tables into bench/RESULTS.md). Installs what it
# needs: wrk (Debian), oha (crates.io, into bench/.tools), the peer's npm packages (pinned).
# Every run is bounded (DURATION seconds); everything started is stopped at the end.
# Usage: bench/compare.sh   (DURATION, RUNS, CONNECTIONS, SKIP, ROWS: see bench/compare.py)
set -euo pipefail
cd "$(dirname "$0")/.."
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
command -v wrk >/dev/null || { as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
[ -x bench/.tools/bin/oha ] || cargo install oha --locked --version 1.10.0 --root bench/.tools
(cd bench/peer && npm ci --no-audit --no-fund --loglevel=error)
cargo build --release --locked --quiet -p provider -p bench-seed
exec python3 bench/compare.py
