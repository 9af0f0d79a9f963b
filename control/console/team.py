"""The team view (``/team``), for everyone signed in: per user, this month's jobs, their
success rate (completed of finished) and spend, with the team's totals; ``?month=YYYY-MM``
for an earlier month. Each person's spend is shown to admins and to that person (as on the
budget page); the rules are ``services/team.py``'s and ``spending``'s."""
from __future__ import annotations

from flask import g, render_template

from control.console.blueprint import bp
from control.console.budget import month_from_query
from control.services import team


@bp.get("/team")
def team_page():
    view = team.for_viewer(team.month_view(month_from_query()), g.user)
    return render_template("console/team.html", view=view)
