"""Screenshots of every console page, for a person to look at (``make screenshots``).

Builds a throw-away embedded system (SQLite and local storage in a temporary directory),
seeds it through the product's own code paths (the sample dataset uploaded and validated;
jobs created; their progress fed through the event ingestion the monitor task uses, so no
GPU or training run is needed), serves the app on 127.0.0.1, and has Debian's headless
Chromium (driven by Playwright) sign in and capture each page at a laptop's width and at a
phone's. The PNGs land in ``screenshots/`` (kept out of git).

    .venv/bin/python scripts/screenshots.py [--out screenshots] [--chromium /usr/bin/chromium]
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys
import tempfile
import threading
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EMAIL, PASSWORD = "ana@example.com", "screenshots-only-1"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
SIZES = {"laptop": (1366, 900), "phone": (390, 844)}


def build_app(data_dir: Path):
    os.environ["BRIGHTRUN_DATA_DIR"] = str(data_dir)
    from flask_migrate import upgrade

    from control.app import create_app
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{data_dir / 'console.db'}",
                      "STORAGE_ENV": {"STORAGE_BACKEND": "local", "STORAGE_LOCAL_ROOT": str(data_dir / "storage")},
                      "DEFAULT_BASE_MODEL": "embedded", "DEFAULT_METHOD": "lora", "DEFAULT_GPU_TYPE": "H100_PCIE",
                      "REDIS_URL": None})
    with app.app_context():
        upgrade()
    return app


def _events(job, attempt: int, steps: int, total: int, *, start_seq=0, end: str | None = None,
            started=None):
    """A run's events as the handler yields them, timestamped as if it ran from ``started``."""
    from shared.events import EventStream
    stream = EventStream(job.id, attempt, start_seq)
    clock = {"t": started}
    out = []

    def emit(type_, seconds, **fields):
        clock["t"] = clock["t"] + timedelta(seconds=seconds)
        event = stream.make(type_, **fields)
        event["ts"] = clock["t"].isoformat(timespec="milliseconds")
        out.append(event)

    emit("stage", 0, stage="preprocessing")
    emit("stage", 4, stage="model_loading")
    emit("stage", 38, stage="training")
    for step in range(1, steps + 1):
        progress = step / total
        lr = 2e-4 * (min(1.0, step / 3) if step <= 3 else 0.5 * (1 + math.cos(math.pi * progress)))
        loss = 2.1 * math.exp(-2.2 * progress) + 0.9 + 0.05 * math.sin(step * 1.7)
        emit("metrics", 11, step=step, total_steps=total, epoch=round(3 * progress, 3), loss=round(loss, 4),
             lr=lr, grad_norm=round(1.4 - progress, 3), tokens_per_second=2150.0, gpu_memory_gb=21.4,
             elapsed_seconds=11.0 * step, eta_seconds=11.0 * (total - step))
        if step % 10 == 0:
            emit("checkpoint", 2, step=step, key=f"{job.storage_prefix}/checkpoints/step-{step:08d}")
    if end == "completed":
        emit("stage", 1, stage="evaluating")
        emit("evaluation", 40, conversations=3, targets=7, tokens=638,
             base={"loss": 3.4551, "perplexity": 31.662}, trained={"loss": 3.0628, "perplexity": 21.387},
             improvement_pct=32.5)
        emit("stage", 1, stage="finalizing")
        emit("artifact", 6, kind="adapter", key=f"{job.storage_prefix}/adapter", size_bytes=36_800_000)
        emit("completed", 1, summary={"steps": total})
    elif end == "failed":
        from shared.failures import out_of_memory
        emit("error", 3, error=out_of_memory(job.configuration["hyperparameters"], 80,
                                             "CUDA out of memory. Tried to allocate 3.91 GiB").to_dict())
    return out


def seed(app) -> dict:
    """A user, the sample dataset, and jobs in each state the pages show."""
    from control.schemas import CreateJob
    from control.extensions import db
    from control.models import JobAttempt, JobStatus, User, utcnow
    from control.services import ingest, training_files, training_jobs
    from control.services.lifecycle import record_interruption
    from shared.failures import classify_text

    pages = {}
    with app.app_context():
        user = User(email=EMAIL, role="admin")
        user.set_password(PASSWORD)
        db.session.add(user)
        db.session.commit()
        sample = (ROOT / "examples" / "sample_dataset.json").read_bytes()
        tf = training_files.create(user, io.BytesIO(sample), "financial_planner_sample.json")
        training_files.validate(tf.id)          # the upload's task, run here
        db.session.refresh(tf)
        pages["file"] = tf.id

        def job(name, preset, steps, total, end, tags, notes=None, pricing="spot", interrupted=False):
            req = CreateJob.model_validate({
                "training_file_id": tf.id, "preset": preset, "name": name, "tags": tags, "notes": notes,
                "base_model": "meta-llama/Meta-Llama-3-70B-Instruct", "method": "qlora",
                "gpu": {"type": "H100_PCIE", "pricing": pricing}}, strict=False)
            row = training_jobs.create(user, req)
            if steps is None:
                return row
            started = utcnow() - timedelta(seconds=60 + 13 * steps)
            row.status, row.started_at = JobStatus.PROVISIONING, started
            number = 1
            if interrupted:            # a spot worker reclaimed at step 23, resumed from 20
                lost = JobAttempt(job=row, number=1, runpod_job_id=f"rp-{row.id[-6:]}-1", runpod_status="FAILED",
                                  started_at=started - timedelta(minutes=6))
                db.session.add(lost)
                row.current_step, row.last_checkpoint_step, row.checkpoint_recovery_count = 23, 20, 1
                record_interruption(row, lost, "lost", classify_text(
                    "worker lost: worker local-3f2a was killed by SIGKILL (spot reclaim)"))
                number = 2
            attempt = JobAttempt(job=row, number=number, runpod_job_id=f"rp-{row.id[-6:]}",
                                 runpod_status="IN_PROGRESS", started_at=started)
            db.session.add(attempt)
            db.session.commit()
            ingest.ingest(row, attempt, _events(row, number, steps, total, end=end, started=started))
            if end:
                attempt.ended_at = utcnow()
                attempt.runpod_status = "COMPLETED" if end == "completed" else "FAILED"
                db.session.commit()
            return row

        pages["completed"] = job("anxious clients v3 · balanced", "balanced", 60, 60, "completed",
                                 ["anxious", "v3"], "Baseline for the Q4 delivery.", interrupted=True).id
        pages["running"] = job("overwhelmed clients · aggressive", "aggressive", 34, 80, None,
                               ["overwhelmed"]).id
        pages["failed"] = job("optimists · long context", "balanced", 12, 60, "failed", ["optimistic"]).id
        pages["pending"] = job("conservative check", "conservative", None, None, None, [], pricing="on_demand").id
    return pages


def serve(app) -> tuple[str, object]:
    from werkzeug.serving import make_server
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server


def validate_queued(app) -> None:
    """Run the queued training-file validations, as ``pipeline worker`` would."""
    from rq import SimpleWorker

    from control.services.queue import get_queue, redis_connection
    with app.app_context():
        SimpleWorker([get_queue()], connection=redis_connection()).work(burst=True)


def capture(app, base: str, pages: dict, out: Path, chromium: str) -> list[Path]:
    from playwright.sync_api import sync_playwright
    broken = {"format": "brightrun-lora-v4", "conversations": [{"conversation_id": "c-1", "training_pairs": [
        {"pair_id": "c-1-t1", "user_message": "Hi", "target_response": 42}]}]}
    shots = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        for size, (width, height) in SIZES.items():
            context = browser.new_context(viewport={"width": width, "height": height})
            page = context.new_page()

            def shot(name):
                path = out / f"{size}-{name}.png"
                page.screenshot(path=str(path), full_page=True)
                shots.append(path)

            page.goto(base + "/login")
            shot("01-login")
            page.fill("input[name=email]", EMAIL)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url("**/jobs")
            shot("02-jobs")
            page.goto(base + "/files")
            page.set_input_files("input[name=file]", files=[{
                "name": "broken.json", "mimeType": "application/json",
                "buffer": json.dumps(broken).encode()}])
            page.click("form.upload button[type=submit]")
            page.wait_for_url("**/files/file_*")
            validate_queued(app)                     # the upload's task, as a worker runs it
            page.wait_for_selector("#validation-problems")   # the page follows it to its result
            shot("03-files-with-validation-errors")
            page.goto(f"{base}/files/{pages['file']}")
            shot("04-file-statistics")
            page.goto(f"{base}/jobs/new?file={pages['file']}")
            page.wait_for_selector("[data-preset-estimate]")
            shot("05-new-job")
            page.click("#advanced > summary")            # the advanced section
            page.fill("input[name=batch_size]", "2")
            page.fill("input[name=name]", "anxious clients v4")
            page.click("#estimate button[type=submit]")
            page.wait_for_selector("#review-form")
            shot("06-review")
            for name in ("running", "completed", "failed", "pending"):
                page.goto(f"{base}/jobs/{pages[name]}")
                page.wait_for_timeout(300)      # the charts draw
                shot(f"07-job-{name}")
            page.goto(f"{base}/jobs/{pages['running']}/cancel")
            shot("08-cancel-confirmation")
            page.goto(f"{base}/jobs/tj_does_not_exist")
            shot("09-not-found")
            page.goto(f"{base}/tokens")
            shot("10-api-tokens")
            page.goto(f"{base}/account")
            shot("11-account")
            context.close()
        browser.close()
    return shots


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "screenshots"))
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    args = parser.parse_args()
    if not Path(args.chromium).exists():
        print(f"no Chromium at {args.chromium}: install Debian's package (apt-get install chromium) "
              "or pass --chromium PATH", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="brightrun-shots-") as tmp:
        app = build_app(Path(tmp))
        pages = seed(app)
        base, server = serve(app)
        try:
            shots = capture(app, base, pages, out, args.chromium)
        finally:
            server.shutdown()
    for path in shots:
        print(path)
    print(f"{len(shots)} screenshots in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
