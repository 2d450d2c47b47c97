"""Start a broker for benchmarking, write a roster, print the URLs and pids, and stop after --lifetime s.

    python -m bench.run_server --db embedded                    # manage.py serve + SQLite + in-memory layer
    python -m bench.run_server --db postgres --workers 1        # Postgres + Redis, one server process
    python -m bench.run_server --db postgres --workers 2        # two server processes sharing Postgres + Redis
    python -m bench.run_server --server daphne ...              # daphne (or uvicorn) run directly, to compare
    python -m bench.run_server --db postgres --meshes 100 --peers 100   # roster of 100 meshes × 100 members

It prints one JSON line {"urls", "pids", "roster", "state_dir"} on stdout (also written to STATE_DIR/server.json)
and a ready-to-run `python -m bench ...` command on stderr. Always on 127.0.0.1; the database is recreated
each time (a fresh SQLite file, or DROP/CREATE of --dbname) so runs start from the same state.
No Django import here: the project's manage.py (and daphne or uvicorn) run as subprocesses.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
PG = ["-h", "127.0.0.1", "-p", "5432", "-U", "postgres"]

# Limits lifted so the harness measures throughput, not the per-member rate limit, the connection caps (a roster
# member may hold many idle sockets) or the per-recipient queue cap.
BENCH_LIMITS = {
    "BROKER_SEND_RATE_BURST": "1000000",
    "BROKER_SEND_RATE_PER_MIN": "60000000",
    "MAX_CONNECTIONS_PER_MESH": "100000",
    "MAX_CONNECTIONS_PER_MEMBER": "100000",
    "BROKER_MAX_QUEUED_PER_RECIPIENT": "10000000",
}


def server_env(args, state_dir: Path, first_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({
        "DJANGO_SETTINGS_MODULE": "claudemesh.settings",
        "CLAUDEMESH_VAR_DIR": str(state_dir / "var"),
        "SQLITE_PATH": str(state_dir / "bench.sqlite3"),
        "DJANGO_SECRET_KEY": "bench-secret-key-not-for-production-0123456789abcdef",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "BROKER_WS_URL": f"ws://127.0.0.1:{first_port}/ws",
        "APP_URL": f"http://127.0.0.1:{first_port}",
    })
    if not args.keep_limits:
        env.update(BENCH_LIMITS)
    if args.db == "postgres":
        env["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{args.dbname}"
        env["REDIS_URL"] = f"redis://127.0.0.1:6379/{args.redis_db}"
    for item in args.env:
        key, _, value = item.partition("=")
        env[key] = value
    return env


def fresh_database(args, state_dir: Path) -> None:
    if args.db == "postgres":
        subprocess.run(["dropdb", *PG, "--if-exists", "--force", args.dbname], check=True)
        subprocess.run(["createdb", *PG, args.dbname], check=True)
        subprocess.run(["redis-cli", "-h", "127.0.0.1", "-n", str(args.redis_db), "FLUSHDB"], check=True,
                       stdout=subprocess.DEVNULL)
    else:
        for suffix in ("", "-wal", "-shm"):
            (state_dir / f"bench.sqlite3{suffix}").unlink(missing_ok=True)


def raise_nofile_limit() -> tuple[int, int]:
    """Lift this process's soft open-file limit to the hard one; the servers inherit it (a socket is a file)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 1 << 20, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listening on {port}")


def server_command(args, port: int) -> list[str]:
    if args.server == "serve":  # the project's own server command (uvicorn, websockets-sansio): what the README runs
        return [sys.executable, "manage.py", "serve", "--port", str(port)]
    if args.server == "uvicorn":
        # uvloop + httptools + the `websockets` implementation, with daphne's keepalive settings.
        return [str(VENV_BIN / "uvicorn"), "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
                "--log-level", "warning", "--loop", "uvloop", "--http", "httptools", "--ws", args.uvicorn_ws,
                "--ws-max-size", "65536", "--ws-ping-interval", "30", "--ws-ping-timeout", "60",
                "claudemesh.asgi:application"]
    return [str(VENV_BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "--ping-interval", "30",
            "--ping-timeout", "60", "--websocket-max-message-size", "65536", "claudemesh.asgi:application"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.run_server", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("embedded", "postgres"), default="embedded")
    parser.add_argument("--workers", type=int, default=1, help="server processes, on consecutive ports (postgres only)")
    parser.add_argument("--server", choices=("serve", "daphne", "uvicorn"), default="serve",
                        help="serve: manage.py serve (default); daphne / uvicorn: those servers run directly, to compare")
    parser.add_argument("--uvicorn-ws", choices=("websockets", "websockets-sansio", "wsproto"), default="websockets",
                        help="uvicorn's WebSocket implementation (default websockets)")
    parser.add_argument("--port", type=int, default=7900, help="first port (default 7900)")
    parser.add_argument("--peers", type=int, default=100, help="members per mesh, for manage.py bench_roster")
    parser.add_argument("--meshes", type=int, default=1,
                        help="meshes in the roster (default 1; the roster file then has the multi-mesh shape)")
    parser.add_argument("--state-dir", default="var/bench", help="roster, SQLite file, logs (default var/bench)")
    parser.add_argument("--dbname", default="claudemesh_bench", help="Postgres database, recreated (default claudemesh_bench)")
    parser.add_argument("--redis-db", type=int, default=5, help="Redis db index, flushed (default 5)")
    parser.add_argument("--env", action="append", default=[], help="extra KEY=VALUE for the server (repeatable)")
    parser.add_argument("--keep-limits", action="store_true", help="keep the broker's default send/capacity limits")
    parser.add_argument("--lifetime", type=float, default=1800, help="stop the servers after this many seconds")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.workers > 1 and args.db == "embedded":
        print("several workers need --db postgres (the embedded channel layer is per process)", file=sys.stderr)
        return 2
    state_dir = (ROOT / args.state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    env = server_env(args, state_dir, args.port)
    fresh_database(args, state_dir)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    roster = state_dir / "roster.json"
    subprocess.run([sys.executable, "manage.py", "bench_roster", "--meshes", str(args.meshes), "--peers",
                    str(args.peers), "--out", str(roster)], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    nofile = raise_nofile_limit()
    procs: list[subprocess.Popen] = []
    ports = [args.port + n for n in range(args.workers)]
    try:
        for n, port in enumerate(ports):
            log = open(state_dir / f"server-{n}.log", "ab")
            procs.append(subprocess.Popen(server_command(args, port), cwd=ROOT, env=env, stdout=log,
                                          stderr=subprocess.STDOUT))
        for port, proc in zip(ports, procs, strict=True):
            wait_for_port(port, proc)
        urls = [f"ws://127.0.0.1:{port}/ws" for port in ports]
        info = {"urls": urls, "pids": [p.pid for p in procs], "roster": str(roster), "state_dir": str(state_dir),
                "nofile": list(nofile)}
        (state_dir / "server.json").write_text(json.dumps(info))
        print(json.dumps(info), flush=True)
        print(f"python -m bench burst --roster {roster} --url {','.join(urls)} "
              f"--pids {','.join(str(p.pid) for p in procs)}", file=sys.stderr, flush=True)
        stop = {"now": False}
        signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
        signal.signal(signal.SIGINT, lambda *_: stop.update(now=True))
        deadline = time.monotonic() + args.lifetime
        while not stop["now"] and time.monotonic() < deadline and all(p.poll() is None for p in procs):
            time.sleep(0.2)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
