"""Recovery time on the local endpoint: a busy worker SIGKILLed -> training steps advancing
again on a new attempt. Runs the fault-injection test that kills the worker three times
(tests/faults, real worker processes, Postgres and Redis) and prints what it measured.

    .venv/bin/python benchmarks/recovery_time.py [--runs N]

Each kill is timed from the SIGKILL to the first stored metric of the next attempt: the
endpoint noticing the dead process, the monitor reading FAILED, the recovery backoff, the
dispatch, a replacement worker starting (Python, torch and transformers imports), loading
the model and the checkpoint, and one training step.
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
TEST = "tests/faults/test_recovery_under_faults.py::test_a_job_survives_its_worker_killed_three_times_and_stopped_once"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="runs of the test (3 kills each)")
    args = parser.parse_args()
    seconds, lost = [], []
    for run in range(args.runs):
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
            out = fh.name
        env = dict(os.environ, RECOVERY_TIMINGS_FILE=out, FAULT_SEED=str(7 + run))
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST],
                              cwd=ROOT, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            print(done.stdout[-3000:], done.stderr[-2000:], sep="\n")
            return done.returncode
        figures = json.loads(Path(out).read_text())
        seconds += figures["kill_to_next_step_s"]
        lost += figures["steps_lost"][:-1]
        print(f"run {run + 1}: kill -> next step {', '.join(f'{s:.1f} s' for s in figures['kill_to_next_step_s'])}; "
              f"steps lost {figures['steps_lost']}")
    print(f"recoveries: {len(seconds)}  kill -> training again: median {statistics.median(seconds):.1f} s, "
          f"max {max(seconds):.1f} s  (the documents' target: under 10 minutes)")
    print(f"steps trained again per SIGKILL (checkpoint every 5 steps): mean {statistics.mean(lost):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
