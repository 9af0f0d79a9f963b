"""Load check of the control plane on PostgreSQL: a script, not a test.

What it does, in order:

1. Builds the schema with the migrations (Flask-Migrate ``upgrade()``) on a fresh ``public``
   schema of its own database (``loadcheck`` by default; created when missing). It never
   touches the ``test`` database the test suite uses.
2. Seeds it: two users (one owns ``--owner-share`` of the jobs), one training file,
   ``--jobs`` training jobs in varied statuses (with their attempts), ``--points`` metric
   points per job (``training_metrics_history``, written with ``COPY``) and
   ``--events-per-job`` events per job (``training_webhook_events``, ``COPY``); then
   ``VACUUM (ANALYZE)`` and a ``CHECKPOINT``, so that the measurements do not share the
   machine with autovacuum. Prints the seeding times and the tables' sizes.
3. Latency (p50/p95/p99, ms) of the read routes, through the real Flask app (its test
   client, so no HTTP server or socket: a WSGI server adds its own overhead) with a bearer
   token, as the owner of most jobs: job detail, job list (pages of 50, with and without a
   status filter; and as one CSV file of all the owner's jobs), metrics (10,000 points
   thinned to the default ``max_points=1000``, and the incremental ``since_step``), and a
   comparison of 4 runs (``/compare?ids=``: their curves and figures side by side). Also how
   many SQL statements each request runs, and ``EXPLAIN (ANALYZE, BUFFERS)`` of the slowest
   statement of the slowest route.
4. Ingestion rate through ``control.services.ingest.ingest`` on fresh jobs: batches of
   ``--batch`` metric events (as one monitor poll brings), each batch in its own session as
   the ``monitor`` task does; then the same batches again (duplicates: stored once, which
   is checked).
5. How many running jobs one RQ worker keeps up with, from the time of one monitor cycle
   (see the printed assumptions). The HTTP read of the GPU endpoint's stream is NOT part of
   any figure here: ``gpu_endpoint.stream`` is replaced by a function that returns events
   prepared beforehand.

Run it from the repository root (about 5 minutes at the defaults on a 2-core machine; the
10 M-row COPY is most of it)::

    .venv/bin/python benchmarks/load_check.py [--database-url URL] [--jobs 1000]
        [--points 10000] [--requests 200] [--skip-seed]

``--skip-seed`` reuses a database seeded by an earlier run (the jobs the ingestion part
creates are deleted at the end, so a seeded database stays as seeded).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("BRIGHTRUN_DATA_DIR", tempfile.mkdtemp(prefix="brightrun-loadcheck-"))

import psycopg  # noqa: E402
from sqlalchemy import event, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

OWNER_EMAIL = "loadcheck-owner@example.com"
OTHER_EMAIL = "loadcheck-other@example.com"
INGEST_PREFIX = "loadcheck-ingest"
STATUS_WEIGHTS = {"completed": 55, "failed": 12, "cancelled": 8, "training": 8, "pending": 5,
                  "queued": 3, "provisioning": 2, "evaluating": 2, "preprocessing": 1,
                  "model_loading": 1, "finalizing": 1, "recovering": 1, "cancel_requested": 1}
METRIC_COLUMNS = ("training_job_id", "attempt", "step", "epoch", "training_loss", "learning_rate",
                  "gradient_norm", "tokens_per_second", "gpu_memory_gb", "elapsed_seconds",
                  "eta_seconds", "recorded_at")
EVENT_COLUMNS = ("training_job_id", "attempt", "seq", "type", "ts", "payload", "received_at")


def say(msg: str = "") -> None:
    print(msg, flush=True)


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear between the closest ranks."""
    s = sorted(values)
    if len(s) == 1:
        return s[0]
    k = (len(s) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


# --------------------------------------------------------------------------- setup

def libpq_url(sqlalchemy_url: str, database: str | None = None) -> str:
    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    if database:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


def ensure_database(sqlalchemy_url: str) -> None:
    name = make_url(sqlalchemy_url).database
    with psycopg.connect(libpq_url(sqlalchemy_url, "postgres"), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')
            say(f"created database {name}")


def make_app(args):
    from control.app import create_app
    return create_app({
        "SQLALCHEMY_DATABASE_URI": args.database_url, "SECRET_KEY": "loadcheck-secret",
        "REDIS_URL": args.redis_url, "QUEUE_NAME": f"loadcheck-{uuid.uuid4().hex[:8]}",
        "STORAGE_ENV": {"STORAGE_BACKEND": "local",
                        "STORAGE_LOCAL_ROOT": os.path.join(os.environ["BRIGHTRUN_DATA_DIR"], "storage")},
        "MONITOR_INTERVAL_SECONDS": args.poll_interval,
        # The timed requests come faster than a token may send them (API_RATE_LIMIT).
        "API_RATE_LIMIT": "1000000 per minute",
    })


def fresh_schema(app) -> float:
    from flask_migrate import upgrade

    from control.extensions import db
    t0 = time.perf_counter()
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        upgrade()
        db.engine.dispose()
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- seeding

def job_configuration(preset: str, base_model: str, method: str, gpu_type: str) -> dict:
    """What ``jobs.create`` stores, from the repository's own presets and cost model."""
    from shared import cost
    from shared.job_input import Hyperparameters
    hp = Hyperparameters.for_preset(preset)
    try:
        est = cost.estimate(tokens=1_200_000, trainable_pairs=2400, num_epochs=hp.num_epochs,
                            targets_per_step=hp.batch_size * hp.gradient_accumulation_steps,
                            base_model=base_model, method=method, gpu_type=gpu_type,
                            pricing="spot").to_dict()
    except Exception:  # the cost model's signature moved: a plausible stand-in will do
        est = {"gpu_type": gpu_type, "pricing": "spot", "price_per_hour": 2.39,
               "duration_minutes": 95.0, "cost_usd": 3.78}
    return {"hyperparameters": hp.model_dump(mode="json"), "overrides": {},
            "checkpoint_every_steps": 100,
            "gpu": {"type": gpu_type, "pricing": "spot", "price_per_hour": est.get("price_per_hour", 2.39)},
            "base_model": base_model, "method": method, "estimate": est}


def seed(app, args) -> dict:
    """Users, a training file, jobs and attempts (ORM: a few thousand rows), then the metric
    points and events with COPY on a raw psycopg connection."""
    from control.extensions import db
    from control.models import JobAttempt, JobStatus, TrainingFile, TrainingJob, User
    from control.models.types import new_id
    from shared.events import parse_event

    rng = random.Random(args.seed)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    timings = {}
    t0 = time.perf_counter()
    with app.app_context():
        owner = User(id=new_id("usr"), email=OWNER_EMAIL, role="engineer")
        other = User(id=new_id("usr"), email=OTHER_EMAIL, role="engineer")
        tf = TrainingFile(id=new_id("file"), filename="support_conversations.json",
                          format="brightrun-lora-v4", storage_key="training-files/x/dataset.json",
                          sha256="0" * 64, size_bytes=4_800_000, created_by=owner.id, status="ready",
                          statistics={"conversations": 600, "trainable_pairs": 2400,
                                      "tokens": {"folded": 1_200_000, "expanded": 3_100_000}})
        db.session.add_all([owner, other])
        db.session.flush()          # no relationship orders these inserts: flush in FK order
        db.session.add(tf)
        db.session.flush()
        configs = {p: job_configuration(p, "meta-llama/Meta-Llama-3-70B-Instruct", "qlora", "H100_PCIE")
                   for p in ("conservative", "balanced", "aggressive")}
        statuses, weights = zip(*STATUS_WEIGHTS.items())
        jobs, attempts = [], []
        n_owner = round(args.jobs * args.owner_share)
        for i in range(args.jobs):
            status = rng.choices(statuses, weights)[0]
            preset = rng.choice(("conservative", "balanced", "balanced", "aggressive"))
            created = now - timedelta(days=120 * (args.jobs - i) / args.jobs, seconds=rng.randint(0, 3600))
            job_id = new_id("tj")
            started = created + timedelta(minutes=rng.randint(1, 30)) if status not in (JobStatus.PENDING, JobStatus.QUEUED) else None
            final = status in JobStatus.FINAL
            step = args.points if status in (JobStatus.COMPLETED, JobStatus.EVALUATING, JobStatus.FINALIZING) else rng.randint(1, args.points)
            job = TrainingJob(
                id=job_id, training_file_id=tf.id, name=f"support bot {i:04d} · {preset}",
                description="load-check job", notes=None, tags=rng.sample(["prod", "exp", "v2", "ei"], 2),
                configuration=configs[preset], preset=preset,
                base_model="meta-llama/Meta-Llama-3-70B-Instruct", method="qlora", status=status,
                current_stage=None if status in (JobStatus.PENDING, JobStatus.QUEUED) else JobStatus.TRAINING,
                progress_percentage=100.0 if status == JobStatus.COMPLETED else round(10 + 80 * step / args.points, 2),
                started_at=started,
                completed_at=started + timedelta(minutes=rng.randint(30, 300)) if final and started else None,
                cost_estimate=configs[preset]["estimate"].get("cost_usd"), actual_cost=round(rng.uniform(0, 9), 4),
                estimated_duration_minutes=configs[preset]["estimate"].get("duration_minutes"),
                runpod_job_id=f"rp-{uuid.uuid4().hex[:12]}" if started else None,
                gpu_type="H100_PCIE", gpu_pricing_tier="spot",
                current_epoch=round(3 * step / args.points, 3), current_step=step, total_steps=args.points,
                latest_loss=round(0.4 + rng.random(), 4), latest_learning_rate=2e-4,
                error_message="CUDA out of memory" if status == JobStatus.FAILED else None,
                error_type="out_of_memory" if status == JobStatus.FAILED else None,
                retry_count=0, checkpoint_recovery_count=1 if status == JobStatus.RECOVERING else 0,
                last_checkpoint_step=(step // 100) * 100, storage_prefix=f"jobs/{job_id}",
                last_event_at=started, created_by=owner.id,
                created_at=created, updated_at=created)
            jobs.append(job)
            if started:
                attempts.append(JobAttempt(id=new_id("att"), training_job_id=job_id, number=1,
                                           runpod_job_id=job.runpod_job_id, runpod_status="COMPLETED" if final else "IN_PROGRESS",
                                           dispatched_at=created, started_at=started,
                                           ended_at=job.completed_at, events_received=args.events_per_job,
                                           outcome=status if final else None))
        # The owner gets ``owner_share`` of the jobs, spread over time (not the first ones only).
        order = list(range(args.jobs))
        rng.shuffle(order)
        for k, idx in enumerate(order):
            jobs[idx].created_by = owner.id if k < n_owner else other.id
        db.session.add_all(jobs)
        db.session.flush()
        db.session.add_all(attempts)
        db.session.commit()
        job_rows = [(j.id, j.started_at or j.created_at) for j in jobs]
        # one event of each shape the seed writes, checked against the contract
        for sample in _event_payloads(job_rows[0][0], 4, args.points, now):
            parse_event(sample)
    timings["users, file, jobs, attempts (ORM)"] = time.perf_counter() - t0

    conninfo = libpq_url(args.database_url)
    with psycopg.connect(conninfo) as conn:
        if not args.keep_fk_checks:
            # The rows reference the jobs just inserted, so the per-row foreign-key triggers
            # (a lookup in training_jobs for each of the 10 M rows) only slow the load down.
            try:
                conn.execute("SET session_replication_role = replica")
                timings["foreign-key triggers off during the COPYs"] = None
            except psycopg.Error:
                conn.rollback()          # not a superuser: keep them
        # Shared curves: the per-row work must stay small next to COPY's own.
        n = args.points
        steps = range(1, n + 1)
        epoch = [round(3 * s / n, 4) for s in steps]
        base_loss = [2.2 * math.exp(-3 * s / n) + 0.35 for s in steps]
        warm = max(1, int(0.03 * n))
        lr = [2e-4 * s / warm if s <= warm else 1e-4 * (1 + math.cos(math.pi * (s - warm) / (n - warm + 1)))
              for s in steps]
        noise = [rng.gauss(0, 0.03) for _ in range(n)]
        grad = [round(0.4 + abs(rng.gauss(0, 0.2)), 4) for _ in range(n)]
        elapsed = [float(s) * 1.3 for s in steps]
        eta = [float(n - s) * 1.3 for s in steps]
        offsets = [timedelta(seconds=e) for e in elapsed]
        t0 = time.perf_counter()
        rows = 0
        with conn.cursor() as cur:
            for k, (job_id, start) in enumerate(job_rows):
                if k % 100 == 0:
                    say(f"  COPY metrics: job {k}/{len(job_rows)} ({rows:,} rows, "
                        f"{time.perf_counter() - t0:.0f} s)")
                scale, shift, tps, mem = rng.uniform(0.8, 1.2), rng.randrange(n), rng.uniform(900, 1800), rng.uniform(18, 60)
                with cur.copy(f"COPY training_metrics_history ({', '.join(METRIC_COLUMNS)}) FROM STDIN") as cp:
                    write = cp.write_row
                    for i in range(n):
                        write((job_id, 1, i + 1, epoch[i], base_loss[i] * scale + noise[(i + shift) % n], lr[i],
                               grad[(i + shift) % n], tps, mem, elapsed[i], eta[i], start + offsets[i]))
                rows += n
                if k % 50 == 49:
                    conn.commit()
            conn.commit()
        timings[f"metrics: {rows:,} rows (COPY)"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        erows = 0
        with conn.cursor() as cur:
            with cur.copy(f"COPY training_webhook_events ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as cp:
                for job_id, start in job_rows:
                    for seq, payload in enumerate(_event_payloads(job_id, args.events_per_job, n, start)):
                        cp.write_row((job_id, 1, seq, payload["type"], payload["ts"], json.dumps(payload),
                                      start + timedelta(seconds=seq)))
                        erows += 1
        conn.commit()
        timings[f"events: {erows:,} rows (COPY)"] = time.perf_counter() - t0

    with psycopg.connect(conninfo, autocommit=True) as conn:
        t0 = time.perf_counter()
        conn.execute("VACUUM (ANALYZE)")
        timings["VACUUM (ANALYZE)"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        conn.execute("CHECKPOINT")
        timings["CHECKPOINT"] = time.perf_counter() - t0
    return timings


def _event_payloads(job_id: str, count: int, total_steps: int, start: datetime) -> list[dict]:
    """A job's first events: three stages, then metrics every step (the contract's shapes)."""
    out = []
    for seq in range(count):
        ts = (start + timedelta(seconds=seq)).isoformat(timespec="milliseconds")
        base = {"job_id": job_id, "attempt": 1, "seq": seq, "ts": ts}
        if seq < 3:
            out.append({**base, "type": "stage", "stage": ("preprocessing", "model_loading", "training")[seq]})
        else:
            step = seq - 2
            out.append({**base, "type": "metrics", "step": step, "total_steps": total_steps,
                        "epoch": round(3 * step / total_steps, 4), "loss": round(2.5 - step / 1000, 4),
                        "lr": 2e-4, "grad_norm": 0.5, "tokens_per_second": 1400.0,
                        "gpu_memory_gb": 40.0, "elapsed_seconds": step * 1.3,
                        "eta_seconds": (total_steps - step) * 1.3})
    return out


def table_sizes(conninfo: str) -> list[tuple]:
    with psycopg.connect(conninfo) as conn:
        return conn.execute("""
            SELECT c.relname, c.reltuples::bigint, pg_table_size(c.oid), pg_indexes_size(c.oid),
                   pg_total_relation_size(c.oid)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> 'alembic_version'
            ORDER BY pg_total_relation_size(c.oid) DESC""").fetchall()


# --------------------------------------------------------------------------- latency

class StatementLog:
    """Every SQL statement the app runs while ``on``, with its time."""

    def __init__(self, engine):
        self.on = False
        self.entries: list[tuple[str, object, float]] = []
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        conn.info["loadcheck_t0"] = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        if self.on:
            self.entries.append((statement, parameters, time.perf_counter() - conn.info.pop("loadcheck_t0")))

    def take(self) -> list:
        out, self.entries = self.entries, []
        return out


def measure_routes(app, args, headers: dict, owner_jobs: list[str], owner_completed: int,
                   stmts: StatementLog) -> list[dict]:
    rng = random.Random(args.seed + 1)
    client = app.test_client()
    pages = max(1, math.ceil(len(owner_jobs) / 50))
    done_pages = max(1, math.ceil(owner_completed / 50))
    since = max(0, args.points - 100)
    routes = [
        ("GET job detail", "/api/training/jobs/<random job>",
         lambda: f"/api/training/jobs/{rng.choice(owner_jobs)}"),
        ("GET job list", f"?per_page=50&page=1..{pages}",
         lambda: f"/api/training/jobs?per_page=50&page={rng.randint(1, pages)}"),
        ("GET job list, status filter", f"?status=completed&per_page=50&page=1..{done_pages}",
         lambda: f"/api/training/jobs?status=completed&per_page=50&page={rng.randint(1, done_pages)}"),
        ("GET job list as CSV", f"?format=csv (all {len(owner_jobs):,} of the owner's jobs, one file)",
         lambda: "/api/training/jobs?format=csv"),
        ("GET metrics", f"/<random job>/metrics ({args.points:,} pts, max_points=1000)",
         lambda: f"/api/training/jobs/{rng.choice(owner_jobs)}/metrics"),
        ("GET metrics, incremental", f"/<random job>/metrics?since_step={since}",
         lambda: f"/api/training/jobs/{rng.choice(owner_jobs)}/metrics?since_step={since}"),
        ("GET compare, 4 runs", f"/compare?ids=<4 random jobs> ({args.points:,} pts each, curves thinned to 400)",
         lambda: "/api/training/jobs/compare?ids=" + ",".join(rng.sample(owner_jobs, 4))),
    ]
    results = []
    with app.app_context():
        for name, shape, path_of in routes:
            for _ in range(args.warmup):
                r = client.get(path_of(), headers=headers)
                if r.status_code != 200:
                    raise SystemExit(f"{name}: HTTP {r.status_code}: {r.get_data(as_text=True)[:500]}")
            times, sizes, queries, slowest = [], [], [], []
            for _ in range(args.requests):
                path = path_of()
                stmts.on = True
                t0 = time.perf_counter()
                r = client.get(path, headers=headers)
                dt = time.perf_counter() - t0
                stmts.on = False
                if r.status_code != 200:
                    raise SystemExit(f"{name} {path}: HTTP {r.status_code}: {r.get_data(as_text=True)[:500]}")
                log = stmts.take()
                times.append(dt * 1000)
                sizes.append(len(r.get_data()))
                queries.append(len(log))
                slowest.append(max(log, key=lambda e: e[2]))
            sql_ms = statistics.median(e[2] for e in slowest) * 1000
            results.append({"name": name, "shape": shape, "times": times, "bytes": statistics.mean(sizes),
                            "queries": statistics.mean(queries),
                            "slowest": sorted(slowest, key=lambda e: e[2])[len(slowest) // 2],
                            "slowest_sql_ms": sql_ms})
    return results


def explain(app, statement: str, parameters) -> list[str]:
    from control.extensions import db
    with app.app_context():
        with db.engine.connect() as conn:
            rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters).fetchall()
            conn.rollback()
    return [r[0] for r in rows]


# --------------------------------------------------------------------------- ingestion

def metric_events(job_id: str, first_step: int, count: int, total_steps: int) -> list[dict]:
    from shared.events import EventStream
    stream = EventStream(job_id, 1, start_seq=first_step - 1)
    return [stream.make("metrics", step=s, total_steps=total_steps, epoch=round(3 * s / total_steps, 4),
                        loss=round(2.5 * math.exp(-s / 3000) + 0.3, 5), lr=2e-4, grad_norm=0.52,
                        tokens_per_second=1450.0, gpu_memory_gb=41.2, elapsed_seconds=s * 1.3,
                        eta_seconds=(total_steps - s) * 1.3)
            for s in range(first_step, first_step + count)]


def make_ingest_jobs(app, count: int, tag: str, total_steps: int) -> list[tuple[str, str, str]]:
    """Fresh running jobs, each with a started attempt: (job id, attempt id, runpod id)."""
    from control.extensions import db
    from control.models import JobAttempt, TrainingFile, TrainingJob, User, utcnow
    from control.models.types import new_id
    with app.app_context():
        other = db.session.scalar(db.select(User).where(User.email == OTHER_EMAIL))
        tf = db.session.scalar(db.select(TrainingFile).limit(1))
        config = job_configuration("balanced", "meta-llama/Meta-Llama-3-70B-Instruct", "qlora", "H100_PCIE")
        out = []
        for i in range(count):
            job_id = new_id("tj")
            job = TrainingJob(id=job_id, training_file_id=tf.id, name=f"{INGEST_PREFIX} {tag} {i}",
                              configuration=config, preset="balanced",
                              base_model="meta-llama/Meta-Llama-3-70B-Instruct", method="qlora",
                              status="training", current_stage="training", gpu_type="H100_PCIE",
                              gpu_pricing_tier="spot", storage_prefix=f"jobs/{job_id}",
                              created_by=other.id, total_steps=total_steps, started_at=utcnow())
            att = JobAttempt(id=new_id("att"), job=job, number=1, runpod_job_id=f"lc-{uuid.uuid4().hex[:12]}",
                             runpod_status="IN_PROGRESS", started_at=utcnow())
            db.session.add_all([job, att])
            out.append((job_id, att.id, att.runpod_job_id))
        db.session.commit()
    return out


def run_cycles(app, plan: list[tuple[str, list]]) -> tuple[list[float], list[float], int]:
    """One monitor-like cycle per (attempt id, batch): load the attempt and its job in a new
    session, ``ingest``, close the session. Returns cycle times, ingest() times, new events."""
    from control.extensions import db
    from control.models import JobAttempt
    from control.services.ingest import ingest
    cycle, inner, new = [], [], 0
    with app.app_context():
        for att_id, batch in plan:
            t0 = time.perf_counter()
            attempt = db.session.get(JobAttempt, att_id)
            job = attempt.job
            t1 = time.perf_counter()
            new += ingest(job, attempt, batch)
            t2 = time.perf_counter()
            db.session.remove()
            t3 = time.perf_counter()
            cycle.append(t3 - t0)
            inner.append(t2 - t1)
    return cycle, inner, new


def stored_counts(app, job_ids: list[str]) -> tuple[int, int]:
    from control.extensions import db
    with app.app_context():
        ev = db.session.execute(text("SELECT count(*) FROM training_webhook_events WHERE training_job_id = ANY(:ids)"),
                                {"ids": job_ids}).scalar()
        mp = db.session.execute(text("SELECT count(*) FROM training_metrics_history WHERE training_job_id = ANY(:ids)"),
                                {"ids": job_ids}).scalar()
        db.session.remove()
    return ev, mp


def delete_ingest_jobs(app) -> int:
    from control.extensions import db
    with app.app_context():
        n = db.session.execute(text("DELETE FROM training_jobs WHERE name LIKE :p"), {"p": INGEST_PREFIX + "%"}).rowcount
        db.session.commit()
        db.session.remove()
    return n


def measure_ingest(app, args) -> dict:
    per_job = args.ingest_events // args.ingest_jobs
    per_job -= per_job % args.batch
    jobs = make_ingest_jobs(app, args.ingest_jobs, "rate", per_job)
    batches = {att: [metric_events(job, s, args.batch, per_job) for s in range(1, per_job + 1, args.batch)]
               for job, att, _ in jobs}
    # round-robin over the jobs, as one worker serving several runs would see them
    plan = [(att, batches[att][k]) for k in range(per_job // args.batch) for _, att, _ in jobs]
    total = sum(len(b) for _, b in plan)
    ids = [j for j, _, _ in jobs]

    cycle, inner, new = run_cycles(app, plan)
    after_new = stored_counts(app, ids)
    dcycle, dinner, dup_new = run_cycles(app, plan)
    after_dup = stored_counts(app, ids)
    return {"jobs": len(jobs), "events": total, "calls": len(plan), "batch": args.batch,
            "new": (cycle, inner, new), "dup": (dcycle, dinner, dup_new),
            "after_new": after_new, "after_dup": after_dup}


# --------------------------------------------------------------------------- monitor cycle

FEED: dict[str, list] = {}   # runpod job id -> prepared batches; forked work horses inherit it
FEED_KEY = "loadcheck:feed:"


def fake_stream(runpod_job_id: str, endpoint_id: str | None = None) -> tuple[str, list]:
    """Stands in for ``gpu_endpoint.stream``. A read returns the batch whose index the caller
    armed under ``FEED_KEY + runpod_job_id`` (in Redis, so forked work horses see it) and
    disarms it: a read nobody armed (an immediate re-read, if ``monitor`` makes one) returns
    nothing, as the real stream would right after a read."""
    from control.services.queue import redis_connection
    idx = redis_connection().getdel(FEED_KEY + runpod_job_id)
    batches = FEED.get(runpod_job_id, [])
    if idx is not None and 0 <= int(idx) < len(batches):
        return "IN_PROGRESS", batches[int(idx)]
    return "IN_PROGRESS", []


def arm(runpod_job_id: str, idx: int) -> None:
    from control.services.queue import redis_connection
    redis_connection().set(FEED_KEY + runpod_job_id, idx)


def cleanup_queue(app) -> None:
    from control.services.queue import get_queue, redis_connection
    with app.app_context():
        q = get_queue()
        for reg in (q.scheduled_job_registry, q.finished_job_registry, q.failed_job_registry,
                    q.started_job_registry, q.deferred_job_registry):
            for job_id in reg.get_job_ids():
                reg.remove(job_id, delete_job=True)
        q.delete(delete_jobs=True)
        conn = redis_connection()
        keys = list(conn.scan_iter(FEED_KEY + "*"))
        if keys:
            conn.delete(*keys)


def measure_monitor(app, args) -> dict:
    """Cycles of ``control.tasks.monitor`` itself, the endpoint read replaced by ``fake_stream``:
    (a) in this process; (b) on a forking RQ worker (``rq.Worker``, as ``pipeline worker`` runs).
    Whether a read with events is followed by an immediate re-read (``delay=0``) or the next
    read waits for the interval is whatever ``monitor`` does: both are counted as they come."""
    from control import tasks
    from control.services import gpu_endpoint
    from control.services.queue import get_queue, redis_connection
    from rq import Worker

    poll = args.poll_events
    out = {}
    real_stream = gpu_endpoint.stream
    gpu_endpoint.stream = fake_stream
    try:
        # ingest() alone for a typical poll batch (and an empty one), in a new session each time
        jobs = make_ingest_jobs(app, args.monitor_runs, "poll", 100 * poll)
        plan = [(att, metric_events(job, 1 + k * poll, poll, 100 * poll))
                for k in range(args.monitor_polls) for job, att, _ in jobs]
        out["ingest_poll"] = run_cycles(app, plan)
        out["ingest_empty"] = run_cycles(app, [(att, []) for _ in range(args.monitor_polls) for _, att, _ in jobs])

        # (a) monitor() in process: a read with events (+ the immediate re-read, if it asks for one)
        jobs = make_ingest_jobs(app, args.monitor_runs, "monitor", 100 * poll)
        for job, att, rp in jobs:
            FEED[rp] = [metric_events(job, 1 + k * poll, poll, 100 * poll) for k in range(args.monitor_polls)]
        with_events, rereads = [], []
        with app.app_context():
            q = get_queue()
            for k in range(args.monitor_polls):
                for job, att, rp in jobs:
                    arm(rp, k)
                    t0 = time.perf_counter()
                    tasks.monitor(att)
                    with_events.append(time.perf_counter() - t0)
                    if q.count:                   # it enqueued a read for right now
                        q.empty()
                        t0 = time.perf_counter()
                        tasks.monitor(att)
                        rereads.append(time.perf_counter() - t0)
                        q.empty()
        out["monitor_events"], out["monitor_rereads"] = with_events, rereads
        cleanup_queue(app)

        # (b) a forking RQ worker: one monitor task a run, its read armed with one batch; a
        # re-read it enqueues for now runs too, reads it schedules for later do not.
        jobs = make_ingest_jobs(app, args.worker_runs, "worker", 100 * poll)
        for job, att, rp in jobs:
            FEED[rp] = [metric_events(job, 1, poll, 100 * poll)]
        with app.app_context():
            q = get_queue()
            for _, att, rp in jobs:
                arm(rp, 0)
                q.enqueue(tasks.monitor, att, result_ttl=600)
            worker = Worker([q], connection=redis_connection())
            t0 = time.perf_counter()
            worker.work(burst=True, logging_level="WARNING")
            wall = time.perf_counter() - t0
            finished, failed = q.finished_job_registry.count, q.failed_job_registry.count
            first_failure = None
            if failed:
                from rq.job import Job
                jid = q.failed_job_registry.get_job_ids()[0]
                first_failure = (Job.fetch(jid, connection=redis_connection()).latest_result().exc_string or "")[-1500:]
        ids = [j for j, _, _ in jobs]
        out["worker"] = {"runs": len(jobs), "wall": wall, "finished": finished, "failed": failed,
                         "first_failure": first_failure, "stored": stored_counts(app, ids)}
        cleanup_queue(app)
    finally:
        gpu_endpoint.stream = real_stream
    return out


# --------------------------------------------------------------------------- report

def machine_facts(conninfo: str) -> list[str]:
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = human_bytes(int(line.split()[1]) * 1024)
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    with psycopg.connect(conninfo) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        settings = {k: conn.execute(f"SHOW {k}").fetchone()[0]
                    for k in ("shared_buffers", "work_mem", "synchronous_commit", "max_wal_size")}
    return [f"CPU: {os.cpu_count()} logical CPUs ({usable} usable by this process) · {cpu_model}",
            f"memory: {mem} · {platform.system()} {platform.release()} · Python {platform.python_version()}",
            f"PostgreSQL {version} on the same machine ("
            + ", ".join(f"{k}={v}" for k, v in settings.items()) + ")",
            "Postgres, Redis and this script share the CPUs; the client is Flask's test client (in process)."]


def ms(x: float) -> str:
    return f"{x * 1000:.2f}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/loadcheck")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--jobs", type=int, default=1000)
    p.add_argument("--points", type=int, default=10000, help="metric points per job")
    p.add_argument("--events-per-job", type=int, default=100, help="seeded events per job")
    p.add_argument("--owner-share", type=float, default=0.9, help="share of the jobs the requesting user owns")
    p.add_argument("--requests", type=int, default=200, help="timed requests per route")
    p.add_argument("--warmup", type=int, default=10, help="untimed requests per route first")
    p.add_argument("--skip-seed", action="store_true", help="reuse a database seeded by an earlier run")
    p.add_argument("--keep-fk-checks", action="store_true",
                   help="keep the foreign-key triggers on during the seed's COPYs (about 3x slower)")
    p.add_argument("--ingest-events", type=int, default=20000)
    p.add_argument("--ingest-jobs", type=int, default=20)
    p.add_argument("--batch", type=int, default=50, help="events per ingest() call")
    p.add_argument("--poll-interval", type=float, default=5.0, help="monitor poll interval, seconds")
    p.add_argument("--steps-per-second", type=float, default=1.0, help="a run's optimizer steps a second")
    p.add_argument("--monitor-runs", type=int, default=50)
    p.add_argument("--monitor-polls", type=int, default=10)
    p.add_argument("--worker-runs", type=int, default=100)
    p.add_argument("--seed", type=int, default=1234)
    args = p.parse_args(argv)
    args.poll_events = max(1, round(args.poll_interval * args.steps_per_second))
    if not make_url(args.database_url).get_backend_name().startswith("postgresql"):
        p.error("--database-url must be a PostgreSQL URL")

    started = time.perf_counter()
    conninfo = libpq_url(args.database_url)
    ensure_database(args.database_url)
    app = make_app(args)
    from control.extensions import db
    from control.models import ApiToken, TrainingJob, User

    say("=" * 78)
    say("Load check · control plane on PostgreSQL")
    say("=" * 78)
    for line in machine_facts(conninfo):
        say(line)
    say(f"database: {make_url(args.database_url).render_as_string(hide_password=True)}")
    say()

    # ---- 1 + 2: schema and seed
    if args.skip_seed:
        say("[seed] skipped (--skip-seed): reusing the seeded database")
        delete_ingest_jobs(app)
    else:
        say("[schema] DROP SCHEMA public CASCADE; CREATE SCHEMA public; flask_migrate.upgrade()")
        say(f"  {fresh_schema(app):.1f} s")
        say(f"[seed] {args.jobs:,} jobs x {args.points:,} metric points, {args.events_per_job} events a job")
        t0 = time.perf_counter()
        timings = seed(app, args)
        for k, v in timings.items():
            say(f"  {k:<44} {v:8.1f} s" if v is not None else f"  ({k})")
        say(f"  {'seed total':<44} {time.perf_counter() - t0:8.1f} s")
        m = next(v for k, v in timings.items() if k.startswith("metrics"))
        say(f"  metrics COPY rate: {args.jobs * args.points / m:,.0f} rows/s")
    say()
    say("[tables] (reltuples is the planner's row estimate)")
    say(f"  {'table':<28} {'rows':>12} {'heap':>10} {'indexes':>10} {'total':>10}")
    for name, rows, heap, idx, total in table_sizes(conninfo):
        say(f"  {name:<28} {rows:>12,} {human_bytes(heap):>10} {human_bytes(idx):>10} {human_bytes(total):>10}")
    say()

    with app.app_context():
        owner = db.session.scalar(db.select(User).where(User.email == OWNER_EMAIL))
        if owner is None:
            raise SystemExit("the database is not seeded: run without --skip-seed")
        row, plain = ApiToken.issue(owner, name="load check")
        db.session.add(row)
        db.session.commit()
        owner_jobs = list(db.session.scalars(db.select(TrainingJob.id).where(TrainingJob.created_by == owner.id)))
        owner_completed = db.session.scalar(db.select(db.func.count()).select_from(TrainingJob).where(
            TrainingJob.created_by == owner.id, TrainingJob.status == "completed"))
        total_jobs = db.session.scalar(db.select(db.func.count()).select_from(TrainingJob))
        db.session.remove()
    headers = {"Authorization": f"Bearer {plain}"}

    # ---- 3: latency
    say(f"[latency] {args.requests} timed requests a route (after {args.warmup} untimed), as the owner of "
        f"{len(owner_jobs)} of {total_jobs} jobs; Flask test client -> app -> PostgreSQL")
    with app.app_context():
        stmts = StatementLog(db.engine)
    results = measure_routes(app, args, headers, owner_jobs, owner_completed, stmts)
    say(f"  {'route':<30} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'SQL/req':>8} {'KiB':>7}")
    for r in results:
        t = r["times"]
        say(f"  {r['name']:<30} {pct(t, 50):8.2f} {pct(t, 95):8.2f} {pct(t, 99):8.2f} {max(t):8.2f} "
            f"{r['queries']:8.1f} {r['bytes'] / 1024:7.1f}")
    say("  request shapes:")
    for r in results:
        say(f"    {r['name']:<30} {r['shape']}")
    say("  slowest SQL statement of each route (median over the requests):")
    for r in results:
        stmt = " ".join(r["slowest"][0].split())
        say(f"    {r['name']:<30} {r['slowest_sql_ms']:6.2f} ms  {stmt[:90]}{'...' if len(stmt) > 90 else ''}")
    worst = max(results, key=lambda r: pct(r["times"], 95))
    say(f"  EXPLAIN (ANALYZE, BUFFERS) of the slowest statement of the slowest route ({worst['name']}):")
    stmt, params, _ = worst["slowest"]
    say("    " + " ".join(stmt.split()))
    say(f"    parameters: {params}")
    for line in explain(app, stmt, params):
        say("    | " + line)
    say()

    # ---- 4: ingestion rate
    say(f"[ingest] control.services.ingest.ingest on {args.ingest_jobs} fresh running jobs, batches of "
        f"{args.batch} metric events,")
    say("  round-robin over the jobs; each call in a new session (load attempt + job, ingest, commit),")
    say("  as one monitor task does; event dicts prepared beforehand (not timed)")
    ing = measure_ingest(app, args)
    for label, key in (("new events", "new"), ("duplicates (same batches again)", "dup")):
        cycle, inner, new = ing[key]
        tot, tin = sum(cycle), sum(inner)
        say(f"  {label:<34} {ing['events'] / tot:9,.0f} events/s   ({ing['calls']} calls, "
            f"{tot:.1f} s; ingest() alone {ing['events'] / tin:,.0f} events/s; per call p50 "
            f"{pct(cycle, 50) * 1000:.1f} ms, p95 {pct(cycle, 95) * 1000:.1f} ms; new rows reported: {new:,})")
    ev1, mp1 = ing["after_new"]
    ev2, mp2 = ing["after_dup"]
    ok = ev1 == ev2 == ing["events"] and mp1 == mp2 == ing["events"] and ing["dup"][2] == 0
    say(f"  stored after the first pass: {ev1:,} events, {mp1:,} metric points; after the duplicates: "
        f"{ev2:,} events, {mp2:,} metric points -> {'stored once: OK' if ok else 'MISMATCH'}")
    say()

    # ---- 5: monitor cycle
    say(f"[monitor] how many runs one RQ worker keeps up with: a run makes {args.steps_per_second:g} step/s, "
        f"one poll every {args.poll_interval:g} s brings {args.poll_events} metric events")
    mon = None
    try:
        mon = measure_monitor(app, args)
    except Exception as exc:  # Redis down, or the task's shape moved: the ingest figure still stands
        say(f"  monitor/worker part skipped: {type(exc).__name__}: {exc}")
    if mon:
        t_poll = statistics.mean(mon["ingest_poll"][0])
        t_empty = statistics.mean(mon["ingest_empty"][0])
        t_me = statistics.mean(mon["monitor_events"])
        rereads = mon["monitor_rereads"]
        w = mon["worker"]
        execs = w["finished"] + w["failed"]
        per_run = execs / max(1, w["runs"])
        t_w = w["wall"] / max(1, execs)
        n_cycles = len(mon["ingest_poll"][0])
        say(f"  (1) ingest() of a {args.poll_events}-event poll batch, new session: mean {ms(t_poll)} ms, "
            f"p95 {ms(pct(mon['ingest_poll'][0], 95))} ms ({n_cycles} cycles); empty batch {ms(t_empty)} ms")
        say(f"  (2) control.tasks.monitor() in process (DB + Redis enqueue; endpoint read stubbed): "
            f"read with events {ms(t_me)} ms (mean of {len(mon['monitor_events'])})")
        if rereads:
            say(f"      it re-reads at once after a read with events: {len(rereads)} re-reads, "
                f"{ms(statistics.mean(rereads))} ms each")
        else:
            say("      it schedules the next read after the interval (no immediate re-read)")
        say(f"  (3) same task on a forking rq.Worker (burst): {execs} executions for {w['runs']} runs "
            f"({per_run:g} a run) in {w['wall']:.2f} s = {ms(t_w)} ms each")
        say("      (fork, new DB connection, RQ bookkeeping included); failed: " + str(w["failed"]))
        if w["first_failure"]:
            say("      first failure: " + w["first_failure"].replace("\n", "\n      "))
        ev_w, mp_w = w["stored"]
        say(f"      stored by the worker: {ev_w:,} events, {mp_w:,} metric points "
            f"(expected {w['runs'] * args.poll_events:,} each)")
        iv = args.poll_interval
        t_proc = t_me + (statistics.mean(rereads) * len(rereads) / len(mon["monitor_events"]) if rereads else 0.0)
        say(f"  runs one worker keeps up with (poll interval {iv:g} s / time the worker spends on a run per interval):")
        for label, t in ((f"ingest() only, one {args.poll_events}-event batch per interval", t_poll),
                         ("monitor() in process, its reads per interval", t_proc),
                         (f"forking rq.Worker, {per_run:g} task execution(s) per interval", t_w * per_run)):
            say(f"    {label:<56} {iv / t:8,.0f}")
        say("  assumptions: every run steps at a steady rate and each poll is served on time; one")
        say("  worker process, Postgres and Redis local and sharing its CPUs. NOT included: the HTTP")
        say("  read of the endpoint's stream (a round trip per task execution; the local endpoint")
        say("  long-polls up to 2 s when no chunk is waiting, holding the worker meanwhile), and the")
        say("  RQ scheduler's 1 s granularity for delayed reads.")
    say()
    n_del = delete_ingest_jobs(app)
    say(f"[cleanup] deleted the {n_del} jobs the ingest and monitor parts created")
    say(f"total runtime: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
