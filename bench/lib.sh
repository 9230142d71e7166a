# What the provider's bench scripts share; source it after `cd` to the repository's root.
# A free loopback port for the provider, fresh secrets, and a wait for readiness.

# Picks a free port on loopback and exports BIND for it; sets `base` to its URL.
bench_bind() {
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  base="http://127.0.0.1:$port"
  export BIND="127.0.0.1:$port"
}

# Fresh secrets for this run: the admin secret and the key that encrypts signing keys at rest.
bench_secrets() {
  ADMIN_SECRET=$(head -c 32 /dev/urandom | base64 | tr -d '/+=' | head -c 43)
  KEY_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | base64)
  export ADMIN_SECRET KEY_ENCRYPTION_KEY
}

# Waits up to 10 s for the provider at `base` to answer /readyz; fails the script otherwise.
bench_wait_ready() {
  for _ in $(seq 100); do curl -fs "$base/readyz" > /dev/null && return; sleep 0.1; done
  echo "the provider did not become ready" >&2
  exit 1
}
