"""The Flask app factory: extensions bound here, one blueprint per surface."""
from __future__ import annotations

import os

from flask import Flask, jsonify
from werkzeug.middleware.proxy_fix import ProxyFix

from control import config as config_module
from control import error_handling, security_headers
from control import models  # noqa: F401  (tables registered with the metadata)
from control.api import bp as api_bp
from control.api.rate_limit import limit_api
from control.console import bp as console_bp
from control.extensions import bind_limiter, csrf, db, migrate
from control.public import bp as public_bp
from control.public.routes import limit_shares
from control.request_limits import LimitedRequest
from control.services import base_models


def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.request_class = LimitedRequest     # uploaded files capped at DATASET_MAX_BYTES
    app.config.update(config_module.from_env())
    app.config.update(config or {})
    if app.config.get("TRUSTED_PROXY_COUNT", 0) > 0:   # the client address from X-Forwarded-For
        hops = app.config["TRUSTED_PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)
    app.json.sort_keys = False

    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("sqlite:///"):
        os.makedirs(os.path.dirname(uri[len("sqlite:///"):]) or ".", exist_ok=True)
    db.init_app(app)
    csrf.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(os.path.dirname(__file__)), "migrations"))
    with app.app_context():
        engine = db.engine
        # RQ forks a work horse per task: the child must not reuse the parent's connections.
        os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))

    csrf.exempt(api_bp)          # bearer tokens, no cookies: nothing for a forged form to ride on
    base_models.check_configured(app.config["BASE_MODELS"])
    app.config.setdefault("RATELIMIT_STORAGE_URI", config_module.rate_limit_storage_uri(app.config["REDIS_URL"]))
    limiter = bind_limiter(app)
    limit_api(limiter, app.config["API_RATE_LIMIT"])
    limit_shares(limiter, app.config["SHARE_RATE_LIMIT"])
    app.register_blueprint(api_bp)
    app.register_blueprint(console_bp)
    app.register_blueprint(public_bp)
    error_handling.register(app)
    security_headers.register(app)

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok")

    return app
