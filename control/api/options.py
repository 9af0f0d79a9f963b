"""``OPTIONS`` on the API answers the methods of the route its path names. Flask's own answer
joins every rule the path could match, so ``/api/training/jobs/trends`` (GET) would also
advertise the DELETE and PATCH of ``/api/training/jobs/<job_id>``, which it does not have."""
from __future__ import annotations

from flask import current_app, request

from control.api.blueprint import bp


def methods_of(rule_text: str) -> list[str]:
    """Every method of the routes written ``rule_text`` (one path may have a rule per method)."""
    return sorted({m for rule in current_app.url_map.iter_rules() if rule.rule == rule_text for m in rule.methods})


@bp.before_request
def _options():
    if request.method != "OPTIONS" or request.url_rule is None:
        return None
    reply = current_app.response_class(status=200)
    reply.headers["Allow"] = ", ".join(methods_of(request.url_rule.rule))
    return reply
