"""A plain (non-generator) worker for the local endpoint's tests.

Input: ``{"echo": <anything>, "raise": false}``: returns ``{"echo": ..., "worker": <id>}``,
or raises when ``raise`` is true (the SDK reports the exception as the FAILED job's error).

Run as a script: ``python -u tests/workers/plain_worker.py``.
"""
import os


def handler(job):
    args = job["input"]
    if args.get("raise"):
        raise ValueError("asked to raise")
    return {"echo": args.get("echo"), "worker": os.environ.get("RUNPOD_POD_ID")}


if __name__ == "__main__":
    import cpuinfo

    # Importing runpod asks py-cpuinfo for the CPU's name (rp_debugger), which starts a
    # Python subprocess: ~1.5 s of every worker start. These tests never read it.
    cpuinfo.get_cpu_info = lambda: {"brand_raw": "test worker"}
    import runpod

    runpod.serverless.start({"handler": handler})
