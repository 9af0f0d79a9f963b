"""Extensions, created unbound; ``create_app`` binds them."""
from flask import Flask, request
from flask_limiter import Limiter
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
csrf = CSRFProtect()   # every form of the console; the bearer-token API is exempt


def bind_limiter(app: Flask) -> Limiter:
    """A request-rate limiter for ``app``, counting in ``RATELIMIT_STORAGE_URI`` (the API sets
    its limit: ``control/api/rate_limit.py``). One per app rather than a module global:
    Flask-Limiter keeps its storage and switches on the instance, not the app. A storage
    outage lets requests through (logged) rather than failing them. Its own headers are off
    (it would put ``Retry-After`` on every answer): the 429s set theirs."""
    limiter = Limiter(key_func=lambda: request.remote_addr or "-", default_limits=[],
                      storage_uri=app.config["RATELIMIT_STORAGE_URI"], strategy="fixed-window",
                      headers_enabled=False, swallow_errors=True, key_prefix="brightrun-rate")
    limiter.init_app(app)
    app.extensions["brightrun.limiter"] = limiter
    return limiter
