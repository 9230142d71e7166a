#!/usr/bin/env python3
"""Ours side by side with node oidc-provider, on loopback, in one run (bench/compare.sh installs
the tools and builds first; run that).

Start each implementation (ours on SQLite, ours on PostgreSQL, the peer), timing start-to-ready
and reading idle memory, and prepare single-use tokens (ours: bench-seed writes them into the
bench database; the peer: mints them through its own models before it listens). Then for each
scenario measure peak throughput with wrk (median of RUNS runs; the runs of the three
implementations interleaved, each started once its server is idle, so that a host whose speed
drifts weighs on all alike) and latency at 50% and 80% of that peak (oha at a fixed rate; the
single-use token scenarios use wrk, each request in the next slot of a fixed schedule, since
oha sends one body; the rate each latency run reached is reported beside its target), and the CPU
time the server used during its peak runs (requests per CPU-second: the per-core figure).
Memory under load is the peak RSS during the peak runs. Then ours again, on SQLite, with the same scenarios spread over 1,000 tenants x 10
clients. Last, one core each: ours on SQLite and the peer started again on core 0 alone, the
load generator on core 1 (taskset), for the scenarios that need no single-use tokens. Writes a Markdown report to bench/last-run.md and prints it.

Environment: DURATION (seconds per run, 10), RUNS (3), CONNECTIONS (32), ROWS and PEER_ROWS
(single-use tokens made per implementation), SKIP (parts to leave out: sqlite postgres peer
spread one-core), ONLY (scenarios to run, by name: all when empty), TEST_DATABASE_URL (the PostgreSQL server, default postgres://postgres@127.0.0.1:5432/postgres),
TIMELINE (a file to which each run's start and end are appended, UTC, to line a run's window up
with a database's log).
Introspection asks about a refresh token on both sides (oidc-provider does not introspect its
JWT access tokens).
"""

import base64
import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
DURATION = int(os.environ.get("DURATION", "10"))
RUNS = int(os.environ.get("RUNS", "3"))
CONNECTIONS = int(os.environ.get("CONNECTIONS", "32"))
SKIP = os.environ.get("SKIP", "").split()
ONLY = os.environ.get("ONLY", "").split()
PG_SERVER = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
OHA = os.environ.get("OHA", str(BENCH / ".tools/bin/oha"))
TIMELINE = os.environ.get("TIMELINE")
VERIFIER = "bench-verifier-0123456789-abcdefghijklmnopqrstuvwxyz"
REDIRECT = "http://127.0.0.1:9/cb"
RESOURCE = "https://api.example"
WORK = Path(tempfile.mkdtemp(prefix="bench-"))
RUNNING: list[subprocess.Popen] = []
DATABASES: list[str] = []  # PostgreSQL databases made for this run, dropped at its end
# CPU affinity prefixes (taskset) for servers and load generators; set for the one-core pass.
SERVER_PIN: list[str] = []
LOAD_PIN: list[str] = []
# What the one-core pass measures: the scenarios that need no single-use tokens.
ONE_CORE_SCENARIOS = ("discovery", "jwks", "client_credentials", "introspection")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body=None, headers=None) -> dict:
    data = None
    headers = dict(headers or {})
    if isinstance(body, dict):
        data = json.dumps(body).encode()
        headers["content-type"] = "application/json"
    elif isinstance(body, str):
        data = body.encode()
        headers["content-type"] = "application/x-www-form-urlencoded"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"{}")


def basic(client_id: str, secret: str) -> str:
    raw = f"{urllib.parse.quote(client_id, safe='')}:{urllib.parse.quote(secret, safe='')}"
    return "Basic " + base64.b64encode(raw.encode()).decode()


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def start(command: list[str], env: dict, ready_url: str | None, cwd=ROOT, ready_line=None):
    """Starts a process; returns it and the seconds until it was ready."""
    log = open(WORK / f"{Path(command[0]).name}-{len(RUNNING)}.log", "w")
    began = time.monotonic()
    command = SERVER_PIN + command
    process = subprocess.Popen(command, env={**os.environ, **env}, cwd=cwd, stdout=subprocess.PIPE if ready_line else log, stderr=log, text=True)
    RUNNING.append(process)
    if ready_line:
        for line in process.stdout:
            if ready_line in line:
                break
        threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
    else:
        while True:
            try:
                with urllib.request.urlopen(ready_url, timeout=1) as response:
                    if response.status == 200:
                        break
            except Exception:
                pass
            if process.poll() is not None:
                sys.exit(f"{command[0]} exited early; see {log.name}")
            time.sleep(0.005)
    return process, time.monotonic() - began


def drop_databases() -> None:
    """Drops the PostgreSQL databases this run created (a few hundred MB each)."""
    while DATABASES:
        name = DATABASES.pop()
        subprocess.run(["psql", PG_SERVER, "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=False)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
    RUNNING.remove(process)


# --- load generators -------------------------------------------------------------------------

LAST_REQUESTS = [0]


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system, all threads) a process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, script: str | None = None, env: dict | None = None, connections=CONNECTIONS, pid=None):
    """One wrk run; returns (requests/s, non-2xx count, p50 ms, p99 ms, peak RSS of pid,
    requests per CPU-second of pid)."""
    command = ["wrk", "-t2", f"-c{connections}", f"-d{DURATION}s", "--latency", url]
    if script:
        command[1:1] = ["-s", str(BENCH / "wrk" / script)]
    peak = [0]
    sampling = [pid is not None]

    def sample():
        while sampling[0]:
            peak[0] = max(peak[0], rss_kb(pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cpu_before = cpu_seconds(pid) if pid else 0.0
    out = subprocess.run(LOAD_PIN + command, env={**os.environ, "THREADS": "2", **(env or {})}, capture_output=True, text=True, timeout=DURATION + 60).stdout
    cpu_used = cpu_seconds(pid) - cpu_before if pid else 0.0
    sampling[0] = False
    sampler.join()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    LAST_REQUESTS[0] = int(re.search(r"(\d+) requests in", out).group(1))
    per_core = LAST_REQUESTS[0] / cpu_used if cpu_used > 0 else float("nan")
    non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    if (m := re.search(r"non2xx=(\d+)", out)):
        non2xx = max(non2xx, int(m.group(1)))
    errors = re.search(r"Socket errors: (.*)", out)

    def percentile(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    if errors:
        non2xx += 1
    return rps, non2xx, percentile(50), percentile(99), peak[0], per_core


def oha(url: str, rate: float, method="GET", body=None, auth=None):
    """oha at a fixed rate; returns (achieved requests/s, non-2xx count, p50 ms, p99 ms)."""
    command = [OHA, "--no-tui", "--output-format", "json", "-z", f"{DURATION}s", "-q", str(int(rate)), "-c", str(CONNECTIONS), "-m", method, url]
    if body:
        command += ["-d", body, "-T", "application/x-www-form-urlencoded"]
    if auth:
        command += ["-H", f"Authorization: {auth}"]
    result = json.loads(subprocess.run(LOAD_PIN + command, capture_output=True, text=True, timeout=DURATION + 60).stdout)
    codes = result.get("statusCodeDistribution", {})
    non2xx = sum(n for code, n in codes.items() if not code.startswith("2"))
    percentiles = result["latencyPercentiles"]
    return result["summary"]["requestsPerSec"], non2xx, percentiles["p50"] * 1000, percentiles["p99"] * 1000


# --- the implementations ---------------------------------------------------------------------

class Target:
    """What a scenario needs of an implementation."""

    def __init__(self, name, issuer, auth, pid, tokens_dir, introspected):
        self.name, self.issuer, self.auth, self.pid = name, issuer, auth, pid
        self.tokens_dir, self.introspected = tokens_dir, introspected
        self.metadata = http("GET", f"{issuer}/.well-known/openid-configuration")


def ours(backend: str, rows: int, work: Path = WORK):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    admin = secrets.token_urlsafe(32)
    if backend == "sqlite":
        database = f"sqlite://{work}/ours.db?mode=rwc"
    else:
        name = f"bench_{secrets.token_hex(4)}"
        subprocess.run(["psql", PG_SERVER, "-qc", f"CREATE DATABASE {name}"], check=True)
        DATABASES.append(name)
        database = PG_SERVER.rsplit("/", 1)[0] + f"/{name}"
    unlimited = "1000000000"
    env = {
        "BIND": f"127.0.0.1:{port}", "PUBLIC_URL": base, "DATABASE_URL": database,
        "ADMIN_SECRET": admin, "KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
        "LOG_FORMAT": "json", "RUST_LOG": "warn",
        **{f"RL_TOKEN_{actor}": unlimited for actor in ("PER_IP", "PER_CLIENT", "PER_TENANT", "GLOBAL")},
        **{f"RL_AUTHORIZE_{actor}": unlimited for actor in ("PER_IP", "PER_TENANT", "GLOBAL")},
    }
    process, ready = start([str(ROOT / "target/release/provider"), "serve"], env, f"{base}/readyz")
    tenant = http("POST", f"{base}/admin/tenants", {"id": "bench"}, {"x-admin-secret": admin})
    tenant_admin = {"x-admin-secret": tenant["admin_secret"]}
    client = http("POST", f"{base}/a/bench/admin/clients", {
        "client_name": "bench", "redirect_uris": [REDIRECT],
        "grant_types": ["client_credentials", "authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "client_secret_basic", "scope": "openid offline_access api:read",
    }, tenant_admin)
    user = http("POST", f"{base}/a/bench/admin/users", {"email": "bench@example.com"}, tenant_admin)
    tokens = work / f"ours-{backend}"
    tokens.mkdir()
    seed_env = {**os.environ, **env}
    for kind, file in (("codes", "codes.txt"), ("refresh", "refresh.txt")):
        with open(tokens / file, "w") as out:
            subprocess.run([str(ROOT / "target/release/bench-seed"), kind, "bench", client["client_id"], user["user_id"], str(rows)], env=seed_env, stdout=out, check=True)
    auth = basic(client["client_id"], client["client_secret"])
    target = Target(f"ours ({backend})", f"{base}/a/bench", auth, process.pid, tokens, reserve(tokens / "refresh.txt"))
    return process, ready, target, env


def peer_startup() -> tuple[float, int]:
    """The peer's start-to-ready and idle memory with no tokens minted."""
    env = {"PORT": str(free_port()), "CLIENT_SECRET": "x" * 32, "OUT": str(WORK), "CODES": "0", "REFRESH": "0", "NODE_ENV": "production"}
    process, ready = start(["node", "server.mjs"], env, None, cwd=BENCH / "peer", ready_line="ready")
    time.sleep(1)
    idle = rss_kb(process.pid)
    stop(process)
    return ready, idle


def peer(rows: int, work: Path = WORK):
    port = free_port()
    secret = secrets.token_urlsafe(32)
    tokens = work / "peer"
    tokens.mkdir()
    env = {"PORT": str(port), "CLIENT_SECRET": secret, "OUT": str(tokens), "CODES": str(rows), "REFRESH": str(rows), "NODE_ENV": "production"}
    process, ready = start(["node", "server.mjs"], env, None, cwd=BENCH / "peer", ready_line="ready")
    auth = basic("bench", secret)
    issuer = f"http://127.0.0.1:{port}"
    return process, ready, Target("oidc-provider", issuer, auth, process.pid, tokens, reserve(tokens / "refresh.txt"))


def reserve(file: Path) -> str:
    """Takes the last token out of a token file, to be introspected (never spent): a refresh
    token, since oidc-provider does not introspect its JWT access tokens."""
    lines = file.read_text().splitlines()
    file.write_text("\n".join(lines[:-1]) + "\n")
    return lines[-1]


# --- scenarios -------------------------------------------------------------------------------

def scenarios(t: Target):
    """(name, url, fixed body or None, token file or None) for each scenario."""
    token = t.metadata["token_endpoint"]
    introspection = t.metadata["introspection_endpoint"]
    redirect = urllib.parse.quote(REDIRECT, safe="")
    resource = "" if t.name == "oidc-provider" else f"&resource={urllib.parse.quote(RESOURCE, safe='')}"
    return [
        ("discovery", f"{t.issuer}/.well-known/openid-configuration", None, None),
        ("jwks", t.metadata["jwks_uri"], None, None),
        ("client_credentials", token, f"grant_type=client_credentials&scope=api%3Aread{resource}", None),
        ("introspection", introspection, f"token={t.introspected}", None),
        ("authorization_code", token, f"grant_type=authorization_code&code={{token}}&redirect_uri={redirect}&code_verifier={VERIFIER}", "codes.txt"),
        ("refresh_token", token, "grant_type=refresh_token&refresh_token={token}", "refresh.txt"),
    ]


def settle(pid: int, most_seconds: float = 15.0) -> None:
    """Waits until a server is idle (under 5% of a core over 0.5 s): work left over from the
    run before, such as ours sealing its audit trail, must not overlap the next run."""
    deadline = time.monotonic() + most_seconds
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(0.5)
        if cpu_seconds(pid) - before < 0.025:
            return


@contextlib.contextmanager
def noted(t: Target, url: str, body, kind: str):
    """Appends the window of the run it wraps to TIMELINE, when set: start and end (UTC), the
    implementation, the path and the grant type, never a token."""
    began = time.time()
    try:
        yield
    finally:
        if TIMELINE:
            stamp = lambda at: time.strftime("%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 10)}"
            grant = urllib.parse.parse_qs(body or "").get("grant_type", ["-"])[0]
            with open(TIMELINE, "a") as log:
                log.write(f"{stamp(began)} {stamp(time.time())} {t.name} {urllib.parse.urlsplit(url).path} {grant} {kind}\n")


def peak_run(t: Target, url: str, body, token_file):
    """One peak run of a scenario against one implementation."""
    settle(t.pid)
    with noted(t, url, body, "peak"):
        if token_file:
            env = {"TOKENS": str(t.tokens_dir / token_file), "BODY": body, "AUTH": t.auth}
            result = wrk(url, "tokens.lua", env, pid=t.pid)
            # Each run spends its tokens; the next takes the file's unused tail.
            spend(t.tokens_dir / token_file, int(LAST_REQUESTS[0] * 1.25) + 1000)
            return result
        if body:
            return wrk(url, "form.lua", {"BODY": body, "AUTH": t.auth}, pid=t.pid)
        return wrk(url, pid=t.pid)


def latency_run(t: Target, url: str, body, token_file, rate: float) -> dict:
    """A run at a fixed rate: achieved rate, non-2xx count, p50 and p99."""
    settle(t.pid)
    with noted(t, url, body, f"at {rate:.0f}/s"):
        if token_file:
            env = {"TOKENS": str(t.tokens_dir / token_file), "BODY": body, "AUTH": t.auth, "RATE": str(rate)}
            rps, errors, p50, p99, _, _ = wrk(url, "tokens.lua", env)
            spend(t.tokens_dir / token_file, int(LAST_REQUESTS[0] * 1.25) + 1000)
        elif body:
            rps, errors, p50, p99 = oha(url, rate, "POST", body, t.auth)
        else:
            rps, errors, p50, p99 = oha(url, rate)
        return {"rate": rps, "target": rate, "errors": errors, "p50": p50, "p99": p99}


def measure(targets: list, only=None, latency=True) -> dict:
    """Every scenario against every implementation, their runs interleaved (ours on SQLite, ours
    on PostgreSQL, the peer, then again), so that a host whose speed drifts over the minutes of
    a run weighs on all of them alike. Latency at fixed rates unless `latency` is false."""
    results = {t.name: {} for t in targets}
    plans = {t.name: {name: (url, body, tokens) for name, url, body, tokens in scenarios(t)} for t in targets}
    for name, *_ in scenarios(targets[0]):
        if only and name not in only:
            continue
        runs = {t.name: [] for t in targets}
        for _ in range(RUNS):
            for t in targets:
                runs[t.name].append(peak_run(t, *plans[t.name][name]))
        for t in targets:
            rs = runs[t.name]
            results[t.name][name] = {"peak": statistics.median(r[0] for r in rs), "peak_errors": sum(r[1] for r in rs),
                                     "rss_kb": max(r[4] for r in rs), "per_core": statistics.median(r[5] for r in rs)}
        for share in (0.5, 0.8) if latency else ():
            for t in targets:
                entry = results[t.name][name]
                entry[f"at{int(share * 100)}"] = latency_run(t, *plans[t.name][name], entry["peak"] * share)
        for t in targets:
            entry = results[t.name][name]
            p99 = f"p99@80% {entry['at80']['p99']:7.2f} ms (at {entry['at80']['rate']:.0f}/s)  " if latency else ""
            errors = entry["peak_errors"] + sum(entry[k]["errors"] for k in ("at50", "at80") if k in entry)
            print(f"  {t.name:22} {name:20} peak {entry['peak']:9.0f}/s  per CPU-s {entry['per_core']:9.0f}  {p99}errors {errors}", flush=True)
    return results


def spend(file: Path, used: int) -> None:
    """Drops the first `used` lines of a token file: those tokens are spent."""
    lines = file.read_text().splitlines()
    if used >= len(lines):
        # The next run sends spent tokens: its refusals show as non-2xx in the report.
        print(f"  warning: {file.name} ran out of tokens; raise ROWS", flush=True)
        used = max(0, len(lines) - 1000)
    file.write_text("\n".join(lines[used:]) + "\n")


def one_core_each() -> dict | None:
    """Ours on SQLite and the peer again, each started on core 0 alone with the load generator on
    core 1: per-core throughput as such, without the load generator competing for the server's
    cores (ours sizes its runtime to the one core it is given, as in a one-core container)."""
    if os.cpu_count() < 2 or not shutil.which("taskset"):
        print("  one-core pass skipped: needs two cores and taskset", flush=True)
        return None
    SERVER_PIN[:], LOAD_PIN[:] = ["taskset", "-c", "0"], ["taskset", "-c", "1"]
    try:
        work = WORK / "one-core"
        work.mkdir()
        _, _, ours_target, _ = ours("sqlite", 10, work)
        _, _, peer_target = peer(10, work)
        chosen = [name for name in ONE_CORE_SCENARIOS if not ONLY or name in ONLY]
        return measure([ours_target, peer_target], chosen, latency=False) if chosen else None
    finally:
        SERVER_PIN[:], LOAD_PIN[:] = [], []
        for process in list(RUNNING):
            stop(process)


def spread(env: dict, base: str, pid: int) -> dict:
    """Discovery, JWKS and client_credentials spread over 1,000 tenants x 10 clients."""
    admin = {"x-admin-secret": env["ADMIN_SECRET"]}
    lines = []
    for i in range(1000):
        tenant = f"t{i:04d}"
        created = http("POST", f"{base}/admin/tenants", {"id": tenant}, admin)
        for j in range(10):
            client = http("POST", f"{base}/a/{tenant}/admin/clients", {
                "client_name": f"c{j}", "grant_types": ["client_credentials"],
                "token_endpoint_auth_method": "client_secret_basic", "scope": "api:read",
            }, {"x-admin-secret": created["admin_secret"]})
            lines.append(f"{tenant} {basic(client['client_id'], client['client_secret'])}")
    spread_file = WORK / "spread.txt"
    spread_file.write_text("\n".join(lines) + "\n")
    results = {}
    for name, path in (("discovery", "/.well-known/openid-configuration"), ("jwks", "/jwks.json"), ("client_credentials", "/token")):
        env = {"SPREAD": str(spread_file), "PATH_SUFFIX": path, "BODY": f"grant_type=client_credentials&scope=api%3Aread&resource={urllib.parse.quote(RESOURCE, safe='')}" if name == "client_credentials" else ""}
        runs = [wrk(f"{base}/", "spread.lua", env, pid=pid) for _ in range(RUNS)]
        results[name] = {"peak": statistics.median(r[0] for r in runs), "errors": sum(r[1] for r in runs), "p99": statistics.median(r[3] for r in runs), "rss_kb": max(r[4] for r in runs)}
        print(f"  spread {name:20} peak {results[name]['peak']:9.0f}/s errors {results[name]['errors']}", flush=True)
    return results


# --- the report ------------------------------------------------------------------------------

def versions() -> dict:
    run = lambda *c: subprocess.run(c, capture_output=True, text=True).stdout.strip().splitlines()[0]
    peer_version = json.loads((BENCH / "peer/node_modules/oidc-provider/package.json").read_text())["version"]
    return {
        "rustc": run("rustc", "--version"), "node": run("node", "--version"),
        "oidc-provider": peer_version, "wrk": " ".join(subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()[:2]),
        "oha": run(OHA, "--version"),
        "cpu": next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")), "?"),
        "cores": str(os.cpu_count()), "kernel": os.uname().release,
        "postgres": run("psql", PG_SERVER, "-tAc", "SHOW server_version"),
    }


def report(measured: dict, startup: dict, idle: dict, spread_results: dict | None, one_core: dict | None) -> str:
    v = versions()
    lines = [
        f"Run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {v['cores']} cores ({v['cpu']}), Linux {v['kernel']}; "
        f"{v['rustc']}, node {v['node']}, oidc-provider {v['oidc-provider']}, {v['wrk']}, {v['oha']}, PostgreSQL {v['postgres']}. "
        f"Peaks: wrk, 2 threads, {CONNECTIONS} connections, {DURATION} s, median of {RUNS} runs. Latency: a fixed rate of 50% and 80% of that peak for {DURATION} s "
        f"(oha; single-use token scenarios: wrk, {CONNECTIONS} connections, requests on a fixed schedule; the rates reached are in the table after the next).",
        "",
        "| scenario | " + " | ".join(f"{n} peak/s" for n in measured) + " | " + " | ".join(f"{n} p50 / p99 ms at 80%" for n in measured) + " | ours (SQLite) / peer |",
        "|---|" + "---|" * (2 * len(measured) + 1),
    ]
    names = list(measured)
    for scenario in measured[names[0]]:
        peaks = [measured[n][scenario]["peak"] for n in names]
        lat = [f"{measured[n][scenario]['at80']['p50']:.2f} / {measured[n][scenario]['at80']['p99']:.2f}" for n in names]
        ratio = ""
        if "oidc-provider" in measured and "ours (sqlite)" in measured:
            ratio = f"{measured['ours (sqlite)'][scenario]['peak'] / measured['oidc-provider'][scenario]['peak']:.1f}x"
        lines.append(f"| {scenario} | " + " | ".join(f"{p:,.0f}" for p in peaks) + " | " + " | ".join(lat) + f" | {ratio} |")
    lines += [
        "",
        "Rate each latency run at 80% reached, of its target (requests/s): a run that fell short measured a lighter load.",
        "",
        "| scenario | " + " | ".join(f"{n} reached / target" for n in names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for scenario in measured[names[0]]:
        reached = [measured[n][scenario]["at80"] for n in names]
        lines.append(f"| {scenario} | " + " | ".join(f"{r['rate']:,.0f} / {r['target']:,.0f}" for r in reached) + " |")
    lines += [
        "",
        "Per core: requests served per second of CPU time the server used during its peak runs (all its "
        "threads, user and system; median of the runs). The peer runs JavaScript on one thread; ours "
        "spreads over both cores, so this is the like-for-like cost of a request.",
        "",
        "| scenario | " + " | ".join(f"{n} per CPU-s" for n in names) + " | ours (SQLite) / peer, per core |",
        "|---|" + "---|" * (len(names) + 1),
    ]
    for scenario in measured[names[0]]:
        per_core = [measured[n][scenario].get("per_core", float("nan")) for n in names]
        ratio = ""
        if "oidc-provider" in measured and "ours (sqlite)" in measured:
            ratio = f"{measured['ours (sqlite)'][scenario]['per_core'] / measured['oidc-provider'][scenario]['per_core']:.1f}x"
        lines.append(f"| {scenario} | " + " | ".join(f"{p:,.0f}" for p in per_core) + f" | {ratio} |")
    errors = {n: sum(s["peak_errors"] + s["at50"]["errors"] + s["at80"]["errors"] for s in measured[n].values()) for n in names}
    lines += [
        "",
        "| | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
        "| start to ready | " + " | ".join(f"{startup[n] * 1000:.0f} ms" for n in names) + " |",
        "| RSS idle | " + " | ".join(f"{idle[n] / 1024:.1f} MB" for n in names) + " |",
        "| RSS peak under load | " + " | ".join(f"{max(s['rss_kb'] for s in measured[n].values()) / 1024:.1f} MB" for n in names) + " |",
        "| non-2xx responses in all runs | " + " | ".join(str(errors[n]) for n in names) + " |",
    ]
    if all("client_credentials" in measured[n] for n in names):
        lines.append("| latency at 50%: p50 / p99 ms, client_credentials | " + " | ".join(f"{measured[n]['client_credentials']['at50']['p50']:.2f} / {measured[n]['client_credentials']['at50']['p99']:.2f}" for n in names) + " |")
    if spread_results:
        lines += ["", "Ours on SQLite, spread over 1,000 tenants x 10 clients (each request a random tenant and client):", "",
                  "| scenario | peak/s | p99 ms at peak | RSS peak | non-2xx |", "|---|---|---|---|---|"]
        for name, r in spread_results.items():
            lines.append(f"| {name} | {r['peak']:,.0f} | {r['p99']:.2f} | {r['rss_kb'] / 1024:.1f} MB | {r['errors']} |")
    if one_core:
        ours_run, peer_run = one_core["ours (sqlite)"], one_core["oidc-provider"]
        lines += ["", "One core each: ours on SQLite and the peer started again on core 0 alone, the load generator on core 1 "
                  f"(peaks, median of {RUNS} runs):", "",
                  "| scenario | ours (sqlite) peak/s | oidc-provider peak/s | ours / peer | ours per CPU-s | oidc-provider per CPU-s | ours / peer, per CPU-s | non-2xx |",
                  "|---|---|---|---|---|---|---|---|"]
        for name in ours_run:
            o, p = ours_run[name], peer_run[name]
            lines.append(f"| {name} | {o['peak']:,.0f} | {p['peak']:,.0f} | {o['peak'] / p['peak']:.1f}x | {o['per_core']:,.0f} | {p['per_core']:,.0f} "
                         f"| {o['per_core'] / p['per_core']:.1f}x | {o['peak_errors'] + p['peak_errors']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    startup, idle = {}, {}
    spread_results = one_core = None
    targets, sqlite_env = [], None
    try:
        if "peer" not in SKIP:
            ready, idle_kb = peer_startup()
            _, _, target = peer(int(os.environ.get("PEER_ROWS", "300000")))
            startup[target.name], idle[target.name] = ready, idle_kb
            targets.append(target)
        for backend in ("sqlite", "postgres"):
            if backend in SKIP:
                continue
            rows = int(os.environ.get("ROWS", "400000" if backend == "sqlite" else "300000"))
            process, ready, target, env = ours(backend, rows)
            time.sleep(1)
            startup[target.name], idle[target.name] = ready, rss_kb(process.pid)
            targets.insert(len(targets) - ("peer" not in SKIP), target)
            if backend == "sqlite":
                sqlite_env = (env, target)
        measured = measure(targets, ONLY)
        if sqlite_env and "spread" not in SKIP:
            env, target = sqlite_env
            spread_results = spread(env, target.issuer.rsplit("/a/", 1)[0], target.pid)
        for process in list(RUNNING):
            stop(process)
        if not {"one-core", "sqlite", "peer"} & set(SKIP):
            one_core = one_core_each()
    finally:
        for process in list(RUNNING):
            stop(process)
        drop_databases()
    text = report(measured, startup, idle, spread_results, one_core)
    (BENCH / "last-run.md").write_text(text)
    (BENCH / "last-run.json").write_text(json.dumps({"measured": measured, "startup": startup, "idle_kb": idle, "spread": spread_results, "one_core": one_core}, indent=1))
    print(text)
    shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
