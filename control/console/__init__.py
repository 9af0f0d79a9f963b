"""The web console: server-rendered pages for engineers, at ``/`` of the same app.

Sign-in is by email and password (the API's users; ``pipeline users set-password``), kept
as a server-side session whose random token is the signed cookie's only credential;
every form carries a CSRF token (Flask-WTF). Each page module holds one resource: ``auth.py``
(sign in and out), ``account.py`` (your password and sessions), ``tokens.py`` (API tokens),
``training_files.py``, ``job_list.py``
(the jobs list), ``new_job.py`` (the new-job flow), ``job_detail.py`` (one job: live view,
actions, downloads), ``evaluation.py`` (its evaluation: the before/after answers and the
re-evaluate form), ``reviews.py`` (blind review, for reviewers), ``delivery.py`` (the quality
gate, the delivery decision, the validation report, share links, the deployment package)
and ``rubrics.py`` (brand-voice rubrics per client). The live parts poll small JSON views of
the same modules; the JavaScript is ``static/console.js`` and the charts are Chart.js, served
from ``static/vendor/``.
"""
from control.console import (account, audit, auth, budget, compare, delivery, errors, evaluation,  # noqa: F401
                             filters, job_detail, job_export, job_list, new_job, notifications, password_links, reviews,
                             rubrics, team,
                             templates, tokens, training_files, users, webhooks)
from control.console.blueprint import bp

__all__ = ["bp"]
