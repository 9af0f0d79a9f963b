"""The jobs list: filters, sort, pagination, and the live rows that update in place."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from flask import g, jsonify, render_template, request
from pydantic import ValidationError
from sqlalchemy import select

from control.console.blueprint import bp
from control.console.filters import minutes, money, status_label, tone
from control.console.history import list_extras
from control.extensions import db
from control.models import JobStatus, TrainingJob, User
from control.schemas import MAX_PAGE, JobListQuery
from control.services.training_jobs import SORTS, list_jobs

PER_PAGE = 25
# The delivery filter's choices: the query's value and what the select says.
DELIVERY_CHOICES = (("", "any"), ("approved", "approved"), ("not_approved", "not approved"),
                    ("rejected", "rejected"), ("none", "not decided"))
# The history's filters: the form's names are the query's (``JobListQuery``).
HISTORY_FIELDS = ("preset", "tag", "training_file_id", "cost_min", "cost_max", "duration_min", "duration_max")
# The query's fields the form names otherwise.
FORM_NAMES = {"created_after": "from", "created_before": "to", "created_by": "creator"}


def _day(value: str, field: str, errors: dict) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors[field] = f"{value!r} is not a date (YYYY-MM-DD)"
        return None


def page_number(value: str | None, last: int = MAX_PAGE) -> int:
    """A page number from the query string, clamped to 1..``last``: a mistyped or huge
    ``?page=`` shows a page rather than an error.

    >>> page_number(None), page_number("3"), page_number("x"), page_number("-2"), page_number("9" * 30)
    (1, 3, 1, 1, 1000000)
    """
    text = (value or "").strip()
    if not (text.isascii() and text.isdigit()):
        return 1
    if len(text) > len(str(last)):
        return last
    return min(max(1, int(text)), last)


def list_query(args, user: User) -> tuple[JobListQuery, dict, dict]:
    """The list's filters from the page's query string: (query, echoed values, errors)."""
    errors: dict = {}
    shown = {k: args.get(k, "") for k in ("q", "from", "to", "creator", "sort", "delivery", *HISTORY_FIELDS)}
    if shown["delivery"] not in dict(DELIVERY_CHOICES):
        errors["delivery"] = f"{shown['delivery']!r} is not a delivery state: any, approved, not_approved, rejected or none"
        shown["delivery"] = ""
    shown["status"] = [s for s in args.getlist("status") if s in set(JobStatus)]
    after, before = _day(shown["from"], "from", errors), _day(shown["to"], "to", errors)
    fields = {
        "page": page_number(args.get("page")), "per_page": PER_PAGE,
        "status": ",".join(shown["status"]) or None, "q": shown["q"] or None,
        "created_after": datetime.combine(after, time(), timezone.utc) if after else None,
        # the "to" day is included: everything before the next midnight
        "created_before": datetime.combine(before + timedelta(days=1), time(), timezone.utc) if before else None,
        "created_by": (shown["creator"] or None) if user.is_admin else None,
        "sort": shown["sort"] if shown["sort"] in SORTS else "newest",
        "delivery": shown["delivery"] or None,
        "for_review": bool(args.get("for_review")) and user.can_review,
        **{k: shown[k].strip() or None for k in HISTORY_FIELDS},
    }
    return validated(fields, errors), shown, errors


def validated(fields: dict, errors: dict) -> JobListQuery:
    """The query of ``fields``; each field it refuses is reported under the form's name for
    it, and left out, so the rest of the filters still apply."""
    for _ in range(len(fields)):
        try:
            return JobListQuery.model_validate(fields, strict=False)
        except ValidationError as exc:
            for err in exc.errors():
                name = str(err["loc"][0]) if err["loc"] else "q"
                errors[FORM_NAMES.get(name, name)] = err["msg"]
                fields.pop(name, None)
    return JobListQuery(per_page=PER_PAGE)


@bp.get("/jobs")
def job_list():
    query, shown, errors = list_query(request.args, g.user)
    rows, total = list_jobs(g.user, query)
    pages = max(1, -(-total // PER_PAGE))
    if query.page > pages:          # past the end (a huge ?page=): the last page
        query = query.model_copy(update={"page": pages})
        rows, total = list_jobs(g.user, query)
    users = (db.session.execute(select(User.id, User.email).order_by(User.email)).all()
             if g.user.is_admin else [])
    return render_template("console/jobs/list.html", jobs=rows, total=total, page=query.page,
                           pages=pages, shown=shown, errors=errors, statuses=list(JobStatus), users=users,
                           sorts=list(SORTS), delivery_choices=DELIVERY_CHOICES, for_review=query.for_review,
                           emails=dict(users) if g.user.is_admin else _creators(rows) if query.for_review
                           else {g.user.id: g.user.email},
                           filtered=any(shown[k] for k in shown if k != "sort"),
                           export_args={k: v for k, v in request.args.lists() if k != "page"},
                           **list_extras(g.user, query, total))


def _creators(rows: list[TrainingJob]) -> dict[str, str]:
    """The emails of the people whose jobs a reviewer sees."""
    ids = {j.created_by for j in rows}
    return dict(db.session.execute(select(User.id, User.email).where(User.id.in_(ids))).all()) if ids else {}


def live_row(job: TrainingJob) -> dict:
    """What a list row or a job page shows that changes while a job runs."""
    return {"id": job.id, "status": job.status, "status_label": status_label(job.status),
            "tone": tone(job.status), "progress": round(job.progress_percentage or 0.0, 1),
            "step": job.current_step, "total_steps": job.total_steps,
            "cost": money(job.actual_cost),
            "eta": "—" if job.is_final else minutes(job.estimated_time_remaining_minutes),
            "final": job.is_final}


@bp.get("/jobs/live.json")
def jobs_live():
    """The listed jobs' changing fields, for the list's rows to update without a reload."""
    ids = [i for i in request.args.get("ids", "").split(",") if i][:200]
    stmt = select(TrainingJob).where(TrainingJob.id.in_(ids))
    if not g.user.is_admin:
        stmt = stmt.where(TrainingJob.created_by == g.user.id)
    rows = db.session.scalars(stmt).all() if ids else []
    return jsonify(jobs=[live_row(j) for j in rows])
