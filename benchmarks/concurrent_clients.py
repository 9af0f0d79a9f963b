"""Concurrent clients against the served control plane on PostgreSQL: a script, not a test.

What it does:

1. Builds and seeds its own database (``concurrent`` by default; never the test suite's)
   with ``load_check.py``'s seed: users, one training file, ``--jobs`` jobs in varied
   statuses with attempts, metric points and events. ``--skip-seed`` reuses it.
2. Serves the app as production does, ``pipeline serve`` (waitress, ``--threads`` threads),
   in a process of its own, with a bearer token of the user who owns most jobs. The API's
   per-token rate limit (where the code has one) is raised out of the way: this measures
   throughput, not the limiter.
3. Drives it with ``wrk`` (Debian's package: ``apt-get install wrk``), ``--clients``
   connections for ``--duration`` seconds a route: the job list (``?per_page=50``) and one
   job's detail. Prints requests/s, p50/p95/p99 latency and errors (socket errors and
   non-2xx answers).

wrk, waitress, Postgres and Redis share the machine's cores, so the figures are the whole
system's on that machine. Run it from the repository root::

    .venv/bin/python benchmarks/concurrent_clients.py [--clients 50] [--duration 60]
        [--jobs 1000] [--threads 8] [--skip-seed] [--code OTHER_CHECKOUT]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

# ``--code DIR`` serves another checkout's code (an older commit, for a before/after figure).
ROOT = Path(sys.argv[sys.argv.index("--code") + 1]).resolve() if "--code" in sys.argv \
    else Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("BRIGHTRUN_DATA_DIR", tempfile.mkdtemp(prefix="brightrun-concurrent-"))

import load_check  # noqa: E402  (the seed and schema helpers)

# wrk's report, as JSON, from its own Lua hook (latency in microseconds).
WRK_REPORT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, '
    .. '"timeout": %d, "p50": %d, "p95": %d, "p99": %d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


def wait_until_up(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"the server did not answer {url} within {seconds:.0f} s")


def run_wrk(url: str, token: str, clients: int, duration: int, script: str) -> dict:
    cmd = ["wrk", f"-t{min(2, clients)}", f"-c{clients}", f"-d{duration}s", "--timeout", "10s",
           "-s", script, "-H", f"Authorization: Bearer {token}", url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    report = json.loads(next(line for line in out.splitlines() if line.startswith("{")))
    report["rps"] = report["requests"] / (report["duration_us"] / 1e6)
    report["errors"] = sum(report[k] for k in ("connect", "read", "write", "status", "timeout"))
    return report


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/concurrent")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--jobs", type=int, default=1000)
    p.add_argument("--points", type=int, default=200, help="metric points per job")
    p.add_argument("--events-per-job", type=int, default=20)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--duration", type=int, default=60, help="seconds a route")
    p.add_argument("--threads", type=int, default=8, help="waitress threads")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--skip-seed", action="store_true")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--code", default=str(ROOT), help="the checkout whose control plane is served")
    args = p.parse_args(argv)
    if shutil.which("wrk") is None:
        p.error("wrk is not installed: apt-get install wrk")
    # What load_check's seed reads.
    args.owner_share, args.keep_fk_checks, args.poll_interval = 0.9, False, 5.0

    load_check.ensure_database(args.database_url)
    app = load_check.make_app(args)
    if not args.skip_seed:
        load_check.fresh_schema(app)
        load_check.seed(app, args)
    from control.extensions import db
    from control.models import ApiToken, TrainingJob, User
    with app.app_context():
        owner = db.session.scalar(db.select(User).where(User.email == load_check.OWNER_EMAIL))
        row, token = ApiToken.issue(owner, name="concurrent clients")
        db.session.add(row)
        db.session.commit()
        job_id = db.session.scalar(db.select(TrainingJob.id).where(TrainingJob.created_by == owner.id)
                                   .order_by(TrainingJob.created_at.desc()).limit(1))
        db.session.remove()

    env = dict(os.environ, DATABASE_URL=args.database_url, REDIS_URL=args.redis_url,
               SECRET_KEY="concurrent-clients", API_RATE_LIMIT="100000000 per minute")
    log_path = Path(os.environ["BRIGHTRUN_DATA_DIR"]) / "server.log"
    log = open(log_path, "w")        # a file, not a pipe nobody reads: a full pipe blocks the server
    server = subprocess.Popen([sys.executable, "-m", "control.cli", "serve", "--port", str(args.port),
                               "--threads", str(args.threads)], env=env, cwd=ROOT,
                              stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{args.port}"
    try:
        wait_until_up(base + "/healthz")
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
            fh.write(WRK_REPORT)
        routes = [("GET /api/training/jobs?per_page=50", f"{base}/api/training/jobs?per_page=50"),
                  ("GET /api/training/jobs/<id>", f"{base}/api/training/jobs/{job_id}")]
        print(f"{args.clients} clients × {args.duration} s a route · waitress {args.threads} threads · "
              f"{args.jobs} jobs · {os.cpu_count()} cores")
        print(f"{'route':<38} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7} {'requests':>9}")
        for label, url in routes:
            run_wrk(url, token, args.clients, 3, fh.name)             # warm-up
            r = run_wrk(url, token, args.clients, args.duration, fh.name)
            print(f"{label:<38} {r['rps']:8.1f} {r['p50'] / 1000:8.1f} {r['p95'] / 1000:8.1f} "
                  f"{r['p99'] / 1000:8.1f} {r['errors']:7d} {r['requests']:9d}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    print(f"server log: {log_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
