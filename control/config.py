"""The control plane's configuration, read from the environment once, when the app is made
(``create_app``); everything else reads ``app.config``. The embedded default needs none of
it. The variables are documented once, in the README's configuration tables (a test holds
the tables and the code to each other)."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from shared.dataset.loading import MAX_BYTES

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
        "DATA_DIR": str(data_dir(env)),
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
        "DATASET_MAX_BYTES": int(env.get("DATASET_MAX_BYTES", MAX_BYTES)),
        "MAX_CONTENT_LENGTH": int(env.get("DATASET_MAX_BYTES", MAX_BYTES)) + 1024 * 1024,
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
