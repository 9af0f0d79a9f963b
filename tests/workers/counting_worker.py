"""A generator worker for the local endpoint's tests: counts, one stream chunk a step.

Input: ``{"count": 3, "sleep": 0.0, "error_at": null, "raise_at": null, "stop_file": null}``.
Step ``i`` yields ``{"i": i, "worker": <RUNPOD_POD_ID>}``; at ``error_at`` it yields
``{"error": ...}`` instead (the SDK ends the job FAILED), at ``raise_at`` it raises; once
``stop_file`` exists it ends normally (so a test decides when a busy job finishes).

Like the real handler it chains a stop request in front of the SDK's SIGTERM handling: it
stops after the current step and, when ``COUNTER_MARK_DIR`` is set, writes
``<dir>/<job id>.sigterm`` (the test's stand-in for a checkpoint).

Run as a script: ``python -u tests/workers/counting_worker.py``.
"""
import os
import signal
import threading
import time
from pathlib import Path

_stop = threading.Event()


def _install_sigterm() -> None:
    if getattr(_install_sigterm, "done", False):
        return
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum, frame):
        _stop.set()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_term)
    _install_sigterm.done = True


def handler(job):
    _install_sigterm()
    args = job["input"]
    sleep = float(args.get("sleep", 0.0))
    for i in range(int(args.get("count", 3))):
        if i == args.get("error_at"):
            yield {"error": f"asked to fail at step {i}"}
            return
        if i == args.get("raise_at"):
            raise RuntimeError(f"asked to raise at step {i}")
        if args.get("stop_file") and os.path.exists(args["stop_file"]):
            return
        yield {"i": i, "worker": os.environ.get("RUNPOD_POD_ID")}
        deadline = time.monotonic() + sleep
        while time.monotonic() < deadline and not _stop.is_set():
            time.sleep(0.01)
        if _stop.is_set():
            mark_dir = os.environ.get("COUNTER_MARK_DIR")
            if mark_dir:
                Path(mark_dir, f"{job['id']}.sigterm").write_text(str(i))
            return


if __name__ == "__main__":
    import cpuinfo

    # Importing runpod asks py-cpuinfo for the CPU's name (rp_debugger), which starts a
    # Python subprocess: ~1.5 s of every worker start. These tests never read it.
    cpuinfo.get_cpu_info = lambda: {"brand_raw": "test worker"}
    import runpod

    runpod.serverless.start({"handler": handler, "return_aggregate_stream": False})
