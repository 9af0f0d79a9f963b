"""The completion webhook's gain on the local endpoint: the time from the handler's
``completed`` event (its ``ts``) to the job row's ``completed_at``, with RunPod's completion
webhook and without it (``COMPLETION_WEBHOOK=0``: the monitor's next stream read settles it).

Runs the real-training test of ``tests/test_completion_webhook.py`` (Postgres, Redis, the
local endpoint with a real runpod worker, a real RQ worker process) once a mode and run, at
one monitor interval for both, and prints what each run measured::

    .venv/bin/python benchmarks/completion_webhook.py [--runs 2] [--interval 30]

With the webhook the wait is the local endpoint noticing the job's end, its POST, one
stream read and the ingest; without it, the time to the monitor's next read: on average
half the interval.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST = ("tests/test_completion_webhook.py::"
        "test_a_job_on_the_local_endpoint_is_completed_by_its_webhook_not_the_monitor")


def one_run(mode: str, interval: float) -> float:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = fh.name
    env = dict(os.environ, COMPLETION_TIMINGS_FILE=out, COMPLETION_WEBHOOK_BENCH=mode,
               COMPLETION_BENCH_INTERVAL=str(interval))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        print("\n".join(line for line in done.stdout.splitlines() if line.startswith(("E ", "FAILED", ">")))[-4000:])
        raise SystemExit(done.returncode)
    return json.loads(Path(out).read_text())["completed_to_row_s"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="training runs a mode")
    parser.add_argument("--interval", type=float, default=30.0, help="MONITOR_INTERVAL_SECONDS, both modes")
    args = parser.parse_args()
    figures = {}
    for mode in ("on", "off"):
        figures[mode] = [one_run(mode, args.interval) for _ in range(args.runs)]
        print(f"webhook {mode:>3}: completed -> row completed " +
              ", ".join(f"{s:.2f} s" for s in figures[mode]), flush=True)
    print(f"monitor interval {args.interval:g} s; median with the webhook "
          f"{statistics.median(figures['on']):.2f} s, without {statistics.median(figures['off']):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
