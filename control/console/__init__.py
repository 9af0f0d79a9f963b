"""The web console: server-rendered pages for engineers, at ``/`` of the same app.

Sign-in is by email and password (the API's users; ``pipeline users set-password``), kept
in a signed session cookie; every form carries a CSRF token (Flask-WTF). Each page module
holds one resource: ``auth.py`` (sign in and out), ``training_files.py``, ``jobs.py`` (list
and new job), ``job_detail.py`` (one job: live view, actions, downloads). The live parts
poll small JSON views of the same modules; the JavaScript is ``static/console.js`` and the
charts are Chart.js, served from ``static/vendor/``.
"""
from flask import Blueprint

bp = Blueprint("console", __name__, template_folder="templates", static_folder="static",
               static_url_path="/console-static")

from control.console import auth, errors, filters, job_detail, jobs, training_files  # noqa: E402,F401

__all__ = ["bp"]
