"""Eight people viewing a 10 MB training file's console page, and one API client reading a
job meanwhile, on PostgreSQL: a script, not a test (issue 11, defect 1).

What it does:

1. Builds a ~10 MB valid dataset (the sample's conversations again and again, with new ids).
2. On its own database (``bench_viewers`` by default; dropped and migrated afresh), uploads it
   through the app (``POST /api/training-files``) and runs the file's validation task once,
   in process, as a worker would; then creates a job on it.
3. Serves the app as production does, ``pipeline serve`` (waitress, ``--threads`` threads),
   in a process of its own.
4. Times ``GET /api/training/jobs/<id>`` alone for a few seconds, then again while
   ``--viewers`` threads load the file's console page in a loop for ``--duration`` seconds,
   each signed in. Prints p50/p95 of the job read (alone and beside the viewers) and of a
   page view.

The viewers, waitress, Postgres and Redis share the machine's cores. From the repository root::

    .venv/bin/python benchmarks/concurrent_viewers.py [--viewers 8] [--duration 20]
        [--megabytes 10] [--code OTHER_CHECKOUT]
"""
from __future__ import annotations

import argparse
import copy
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

# ``--code DIR`` serves another checkout's code, for a before/after figure (the file and the
# job are prepared with this checkout's, whose schema both must share).
ROOT = Path(sys.argv[sys.argv.index("--code") + 1]).resolve() if "--code" in sys.argv \
    else Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("BRIGHTRUN_DATA_DIR", tempfile.mkdtemp(prefix="brightrun-viewers-"))

import load_check  # noqa: E402  (database helpers)
import requests  # noqa: E402

EMAIL, PASSWORD = "viewer@example.com", "viewers-benchmark-password"
SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sample_dataset.json"


def big_dataset(megabytes: float) -> bytes:
    """The sample's conversations repeated (new conversation and pair ids) to ``megabytes``."""
    doc = json.loads(SAMPLE.read_text())
    originals, conversations = doc["conversations"], []
    size, n = len(SAMPLE.read_bytes()), 0
    while size < megabytes * 1e6:
        c = copy.deepcopy(originals[n % len(originals)])
        cid = f"bench-{n:06d}"
        c["conversation_metadata"]["conversation_id"] = cid
        for k, pair in enumerate(c["training_pairs"], 1):
            pair["id"] = f"{cid}-t{k}"
        conversations.append(c)
        size += len(json.dumps(c))
        n += 1
    doc["conversations"] = conversations
    meta = doc["training_file_metadata"]
    meta["total_conversations"] = len(conversations)
    meta["total_training_pairs"] = sum(len(c["training_pairs"]) for c in conversations)
    return json.dumps(doc).encode()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def prepare(app, data: bytes) -> tuple[str, str, dict]:
    """The user, the uploaded and validated file, a job on it: (file id, job id, timings)."""
    from control.extensions import db
    from control.models import ApiToken, User
    from control.services import training_files

    with app.app_context():
        user = User(email=EMAIL, role="engineer")
        user.set_password(PASSWORD)
        row, token = ApiToken.issue(user)
        db.session.add_all([user, row])
        db.session.commit()
        auth = {"Authorization": f"Bearer {token}"}
        client = app.test_client()
        t0 = time.perf_counter()
        r = client.post("/api/training-files", headers=auth, content_type="multipart/form-data",
                        data={"file": (io.BytesIO(data), "big.json")})
        upload_s = time.perf_counter() - t0
        assert r.status_code in (201, 202), r.get_json()
        file_id = r.get_json()["id"]
        validate_s = 0.0
        if r.status_code == 202:                      # validated by its task: run it here, once
            t0 = time.perf_counter()
            assert training_files.validate(file_id) == "ready"
            validate_s = time.perf_counter() - t0
        r = client.post("/api/training/jobs", headers=auth, json={"training_file_id": file_id})
        assert r.status_code == 201, r.get_json()
        db.session.remove()
        return file_id, r.get_json()["id"], {"token": token, "upload_s": upload_s, "validate_s": validate_s}


def signed_in(base: str) -> requests.Session:
    s = requests.Session()
    page = s.get(f"{base}/login", timeout=30).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = s.post(f"{base}/login", data={"email": EMAIL, "password": PASSWORD, "csrf_token": csrf},
               allow_redirects=False, timeout=30)
    assert r.status_code == 302, r.text[:500]
    return s


def read_job(base: str, job_id: str, token: str, until: float) -> list[float]:
    s, out = requests.Session(), []
    s.headers["Authorization"] = f"Bearer {token}"
    while time.monotonic() < until:
        t0 = time.perf_counter()
        r = s.get(f"{base}/api/training/jobs/{job_id}", timeout=120)
        out.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200, r.text[:300]
        time.sleep(0.05)
    return out


def view_page(session: requests.Session, url: str, until: float, out: list, errors: list) -> None:
    while time.monotonic() < until:
        t0 = time.perf_counter()
        r = session.get(url, timeout=120)
        out.append((time.perf_counter() - t0) * 1000)
        if r.status_code != 200 or 'id="file-stats"' not in r.text:
            errors.append(r.status_code)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/bench_viewers")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--megabytes", type=float, default=10)
    p.add_argument("--viewers", type=int, default=8)
    p.add_argument("--duration", type=float, default=20, help="seconds of viewing")
    p.add_argument("--alone", type=float, default=5, help="seconds of job reads with no viewer")
    p.add_argument("--threads", type=int, default=8, help="waitress threads")
    p.add_argument("--port", type=int, default=8766)
    p.add_argument("--code", default=str(ROOT), help="the checkout whose control plane is served")
    args = p.parse_args(argv)
    args.poll_interval = 5.0

    data = big_dataset(args.megabytes)
    load_check.ensure_database(args.database_url)
    app = load_check.make_app(args)
    load_check.fresh_schema(app)
    file_id, job_id, facts = prepare(app, data)

    env = dict(os.environ, DATABASE_URL=args.database_url, REDIS_URL=args.redis_url,
               QUEUE_NAME=app.config["QUEUE_NAME"], SECRET_KEY="loadcheck-secret",
               STORAGE_BACKEND="local", STORAGE_LOCAL_ROOT=app.config["STORAGE_ENV"]["STORAGE_LOCAL_ROOT"],
               API_RATE_LIMIT="100000000 per minute")
    server = subprocess.Popen([sys.executable, "-m", "control.cli", "serve", "--port", str(args.port),
                               "--threads", str(args.threads)], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{args.port}"
    try:
        load_check_wait(base)
        page_url = f"{base}/files/{file_id}"
        sessions = [signed_in(base) for _ in range(args.viewers)]
        sessions[0].get(page_url, timeout=120)                                   # warm-up
        read_job(base, job_id, facts["token"], time.monotonic() + 1)
        alone = read_job(base, job_id, facts["token"], time.monotonic() + args.alone)
        until = time.monotonic() + args.duration
        views: list[float] = []
        errors: list = []
        viewers = [threading.Thread(target=view_page, args=(s, page_url, until, views, errors))
                   for s in sessions]
        for t in viewers:
            t.start()
        beside = read_job(base, job_id, facts["token"], until)
        for t in viewers:
            t.join()
    finally:
        server.terminate()
        server.wait(timeout=30)

    print(f"dataset {len(data) / 1e6:.1f} MB · upload request {facts['upload_s']:.2f} s · "
          f"validation task (once) {facts['validate_s']:.2f} s · waitress {args.threads} threads · "
          f"{os.cpu_count()} cores · code {ROOT}")
    print(f"{'what':<44} {'n':>6} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9}")
    for label, xs in (("GET /api/training/jobs/<id>, no viewer", alone),
                      (f"GET /api/training/jobs/<id>, {args.viewers} viewers", beside),
                      (f"GET /files/<id> (console page), {args.viewers} viewers", views)):
        print(f"{label:<44} {len(xs):6d} {pct(xs, 50):9.1f} {pct(xs, 95):9.1f} {max(xs):9.1f}")
    print(f"page views per second: {len(views) / args.duration:.1f} · page errors: {len(errors)} · "
          f"mean job read beside viewers {statistics.fmean(beside):.1f} ms")
    return 0


def load_check_wait(base: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(base + "/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            time.sleep(0.3)
    raise SystemExit(f"the server did not answer {base}/healthz within {seconds:.0f} s")


if __name__ == "__main__":
    raise SystemExit(main())
