"""The worker processes: spawn, stop (SIGTERM, then SIGKILL after a grace period), notice exits.

Each worker runs in its own session, so its process group holds everything it started
(the SDK forks a heartbeat process; a handler may start more) and Ctrl-C on a terminal
reaches only the endpoint, which then stops the workers in order. SIGTERM goes to the
worker's main process alone, as RunPod sends it: the SDK stops taking jobs and finishes the
running one while its helpers keep going. SIGKILL, and the clean-up after any exit, go to
the whole group: a SIGKILLed SDK worker would otherwise leave its heartbeat process
pinging forever.

Exits are noticed with ``waitid(WNOWAIT)``, so the group is killed while the dead main
process still holds its pid (no pid reuse) and only then reaped.
"""
from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

log = logging.getLogger(__name__)


@dataclass
class WorkerProcess:
    id: str
    popen: subprocess.Popen
    started_at: float                  # time.time()
    started_mono: float                # time.monotonic()
    log_path: str | None
    stop_reason: str | None = None     # set once we asked it to stop
    kill_at: float | None = None       # monotonic deadline for SIGKILL after SIGTERM
    returncode: int | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def has_exited(self) -> bool:
        """Whether the main process has ended, without reaping it."""
        if self.returncode is not None or self.popen.returncode is not None:
            return True
        try:
            return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:          # reaped elsewhere
            return True

    def describe_exit(self) -> str:
        code = self.returncode
        if code is None:
            return "is still running"
        if code < 0:
            try:
                return f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"was killed by signal {-code}"
        return f"exited with code {code}"


class WorkerPool:
    """The worker processes of one endpoint. Thread-safe."""

    def __init__(self, command: Sequence[str], env_for: Callable[[str], dict],
                 log_dir: str | os.PathLike | None = None, cwd: str | None = None,
                 id_prefix: str = "worker"):
        self.command = list(command)
        self.env_for = env_for
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.cwd = cwd
        self.id_prefix = id_prefix
        self._lock = threading.Lock()
        self._procs: dict[str, WorkerProcess] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._procs)

    def processes(self) -> list[WorkerProcess]:
        with self._lock:
            return list(self._procs.values())

    def get(self, worker_id: str) -> WorkerProcess | None:
        with self._lock:
            return self._procs.get(worker_id)

    def spawn(self) -> WorkerProcess:
        """Start one worker process (raises OSError when the command cannot start)."""
        worker_id = f"{self.id_prefix}-{secrets.token_hex(4)}"
        log_path, out = None, None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log_path = str(self.log_dir / f"{worker_id}.log")
            out = open(log_path, "ab")
        try:
            popen = subprocess.Popen(self.command, env=self.env_for(worker_id), cwd=self.cwd,
                                     stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT if out else None,
                                     start_new_session=True)
        finally:
            if out is not None:
                out.close()
        proc = WorkerProcess(worker_id, popen, time.time(), time.monotonic(), log_path)
        with self._lock:
            self._procs[worker_id] = proc
        log.info("worker %s started (pid %d)%s", worker_id, popen.pid,
                 f", log {log_path}" if log_path else "")
        return proc

    def terminate(self, worker_id: str, grace_s: float, reason: str) -> bool:
        """SIGTERM the worker's main process; SIGKILL its group after ``grace_s`` (``overdue``)."""
        with self._lock:
            proc = self._procs.get(worker_id)
            if proc is None or proc.kill_at is not None:
                return False
            proc.stop_reason = reason
            proc.kill_at = time.monotonic() + grace_s
        log.info("worker %s (pid %d): SIGTERM (%s)", worker_id, proc.pid, reason)
        _signal(proc.pid, signal.SIGTERM)
        return True

    def kill(self, worker_id: str, reason: str) -> bool:
        """SIGKILL the worker's whole process group now."""
        with self._lock:
            proc = self._procs.get(worker_id)
            if proc is None:
                return False
            proc.stop_reason = proc.stop_reason or reason
            proc.kill_at = proc.kill_at or time.monotonic()
        log.warning("worker %s (pid %d): SIGKILL (%s)", worker_id, proc.pid, reason)
        _killpg(proc.pid)
        return True

    def kill_overdue(self) -> list[str]:
        """SIGKILL the workers still alive past their grace period."""
        now = time.monotonic()
        late = [p for p in self.processes()
                if p.kill_at is not None and now >= p.kill_at and not p.has_exited()]
        for proc in late:
            log.warning("worker %s (pid %d) outlived its grace period: SIGKILL",
                        proc.id, proc.pid)
            _killpg(proc.pid)
            proc.kill_at = float("inf")
        return [p.id for p in late]

    def reap(self) -> list[WorkerProcess]:
        """The workers whose main process has ended, removed from the pool: their group is
        killed (leftover helpers), they are reaped and ``returncode`` is set."""
        gone = []
        for proc in self.processes():
            if not proc.has_exited():
                continue
            _killpg(proc.pid)
            try:
                proc.returncode = proc.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:   # cannot happen for an exited process
                continue
            with self._lock:
                self._procs.pop(proc.id, None)
            gone.append(proc)
        return gone

    def shutdown(self, grace_s: float) -> list[WorkerProcess]:
        """Stop every worker: SIGTERM, wait up to ``grace_s``, SIGKILL the rest; all reaped."""
        for proc in self.processes():
            self.terminate(proc.id, grace_s, "the endpoint is stopping")
        deadline = time.monotonic() + grace_s
        gone = self.reap()
        while len(self) and time.monotonic() < deadline:
            time.sleep(0.05)
            gone += self.reap()
        for proc in self.processes():
            self.kill(proc.id, "the endpoint is stopping")
        deadline = time.monotonic() + 10
        while len(self) and time.monotonic() < deadline:
            gone += self.reap()
            if len(self):
                time.sleep(0.02)
        for proc in self.processes():
            log.error("worker %s (pid %d) did not die on SIGKILL", proc.id, proc.pid)
        return gone


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _killpg(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
