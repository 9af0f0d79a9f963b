"""The Flask app factory: extensions bound here, one blueprint per surface."""
from __future__ import annotations

import os

from flask import Flask, jsonify

from control import config as config_module
from control import error_handling
from control import models  # noqa: F401  (tables registered with the metadata)
from control.api import bp as api_bp
from control.console import bp as console_bp
from control.extensions import csrf, db, migrate


def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(config_module.from_env())
    app.config.update(config or {})
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
    app.register_blueprint(api_bp)
    app.register_blueprint(console_bp)
    error_handling.register(app)

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok")

    return app
