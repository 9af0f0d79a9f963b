"""The team view (``/team``), for everyone signed in: per user, this month's jobs, their
success rate (completed of finished) and spend, with the team's totals; ``?month=YYYY-MM``
for an earlier month. Each person's spend is shown to admins and to that person (as on the
budget page); the rules are ``services/team.py``'s and ``spending``'s."""
from __future__ import annotations

from flask import flash, g, render_template, request
from pydantic import ValidationError

from control.console.blueprint import bp
from control.schemas.money import MonthQuery
from control.services import spending, team


def _month():
    try:
        query = MonthQuery.model_validate(request.args.to_dict(), strict=False)
    except ValidationError as exc:
        flash(f"Month: {exc.errors()[0]['msg']}; showing this month.", "error")
        return None
    return spending.parse_month(query.month) if query.month else None


@bp.get("/team")
def team_page():
    view = team.for_viewer(team.month_view(_month()), g.user)
    return render_template("console/team.html", view=view)
