"""The Flask app factory. The JSON API, console and RQ dispatch arrive with the
control-plane issue; for now the app answers its health check."""
from __future__ import annotations


def create_app(config: dict | None = None):
    from flask import Flask, jsonify

    app = Flask(__name__)
    app.config.update(config or {})

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok")

    return app
