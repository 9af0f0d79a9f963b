"""Blind review in the console, for reviewers and admins: one item a page.

- ``/jobs/<id>/review/ei``: an emotional-intelligence scenario, its conversation and two
  answers labelled "Answer A" and "Answer B". Which model wrote which is the server's
  (``services.reviews``): the page and its form carry only the labels. The reviewer scores
  each answer 1-5 on every criterion and prefers A, B or a tie.
- ``/jobs/<id>/review/brand-voice``: one of the adapter's held-out answers, scored 1-5 on
  every characteristic of the job's rubric.

``?position=N`` shows the reviewer's N-th item (each reviewer has an order of their own);
without it, the first not yet scored, or a summary once all are. The form POSTs one item's
scores and redirects to the next item to score; a form with a score missing comes back with
what is missing marked and the rest kept. The pages work without JavaScript; ``console.js``
adds the keys (1-5, a/b/t, n/p, Enter).

Only reviewers and admins review: anyone else gets the 403 page saying who may.
"""
from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from pydantic import ValidationError

from control.console.blueprint import bp
from control.schemas import ReviewRequest
from control.services import reviews
from control.services.exceptions import Conflict
from shared.errors import ConfigError

LABELS = ("A", "B")
SCALE = ("1", "2", "3", "4", "5")
PREFERENCES = ("A", "B", "tie")
SUITE_OF = {"ei": "ei", "brand-voice": "brand_voice"}        # the page's path -> the service's suite
VIEWS = {"ei": "console.review_ei", "brand_voice": "console.review_brand_voice"}
TITLES = {"ei": "Emotional intelligence", "brand_voice": "Brand voice"}
MAX_POSITION = 10_000


# ---------------------------------------------------------------------- the form, parsed
def score_field(label: str | None, criterion: str) -> str:
    """The form field of one score: ``A-empathy`` for an answer's criterion, ``score-warmth``
    for a rubric characteristic.

    >>> score_field("A", "empathy"), score_field(None, "warmth")
    ('A-empathy', 'score-warmth')
    """
    return f"{label}-{criterion}" if label else f"score-{criterion}"


def _score(form, field: str, what: str, errors: dict) -> int | None:
    value = (form.get(field) or "").strip()
    if value in SCALE:
        return int(value)
    errors[field] = f"score {what} from 1 to 5" if not value else f"{what}: {value!r} is not a score from 1 to 5"
    return None


def ei_body(form, criteria: list[str]) -> tuple[dict, dict[str, str]]:
    """The scores and the preference of an emotional-intelligence form, and what is missing
    or wrong, keyed by field.

    >>> form = {"A-empathy": "4", "B-empathy": "2", "preference": "A"}
    >>> ei_body(form, ["empathy"])
    ({'answers': {'A': {'empathy': 4}, 'B': {'empathy': 2}}, 'preference': 'A'}, {})
    >>> ei_body({"A-empathy": "9"}, ["empathy"])[1]
    {'A-empathy': "Answer A's empathy: '9' is not a score from 1 to 5", 'B-empathy': "score Answer B's empathy from 1 to 5", 'preference': 'pick the better answer: A, B or a tie'}
    """
    errors: dict[str, str] = {}
    answers = {label: {c: _score(form, score_field(label, c), f"Answer {label}'s {c}", errors) for c in criteria}
               for label in LABELS}
    preference = (form.get("preference") or "").strip()
    if preference not in PREFERENCES:
        errors["preference"] = "pick the better answer: A, B or a tie"
    return {"answers": answers, "preference": preference}, errors


def brand_body(form, characteristics: list[dict]) -> tuple[dict, dict[str, str]]:
    """The rubric scores of a brand-voice form, and what is missing or wrong, keyed by field.

    >>> brand_body({"score-warmth": "5"}, [{"id": "warmth", "name": "Warmth"}, {"id": "tone", "name": "Tone"}])
    ({'scores': {'warmth': 5, 'tone': None}}, {'score-tone': 'score Tone from 1 to 5'})
    """
    errors: dict[str, str] = {}
    scores = {c["id"]: _score(form, score_field(None, c["id"]), c["name"], errors) for c in characteristics}
    return {"scores": scores}, errors


def review_request(suite: str, form, item: dict) -> tuple[ReviewRequest | None, dict[str, str]]:
    """The ``ReviewRequest`` for one item's form, or what is wrong with it, keyed by field."""
    if suite == "ei":
        body, errors = ei_body(form, [c["id"] for c in item["criteria"]])
    else:
        body, errors = brand_body(form, item["characteristics"])
    if errors:
        return None, errors
    try:
        return ReviewRequest.model_validate({"suite": suite, "item_id": item["id"],
                                             "run": form.get("run") or None, **body}), {}
    except ValidationError as exc:
        return None, {"form": "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())}


def chosen(item: dict, form) -> dict[str, str]:
    """What the page shows checked: the form just sent, else the scores saved before, by field.

    >>> chosen({"saved": {"answers": {"A": {"empathy": 4}, "B": {"empathy": 2}}, "preference": "tie"}}, None)
    {'A-empathy': '4', 'B-empathy': '2', 'preference': 'tie'}
    >>> chosen({"saved": {"scores": {"warmth": 3}}}, {"score-warmth": "5"})
    {'score-warmth': '5'}
    """
    if form is not None:
        return {k: v for k, v in form.items() if k != "csrf_token"}
    saved = item.get("saved") or {}
    out = {score_field(label, c): str(v) for label, scores in (saved.get("answers") or {}).items()
           for c, v in scores.items()}
    out.update({score_field(None, c): str(v) for c, v in (saved.get("scores") or {}).items()})
    if saved.get("preference"):
        out["preference"] = saved["preference"]
    return out


def form_field(path: str | None) -> str:
    """The form field behind a service problem's field path.

    >>> form_field("answers.A.empathy"), form_field("scores.warmth"), form_field("preference"), form_field(None)
    ('A-empathy', 'score-warmth', 'preference', 'form')
    """
    parts = (path or "form").split(".")
    if parts[0] == "answers" and len(parts) == 3:
        return score_field(parts[1], parts[2])
    if parts[0] == "scores" and len(parts) == 2:
        return score_field(None, parts[1])
    return parts[0] if parts[0] in ("preference", "item_id") else "form"


def position_asked(raw: str | None) -> int | None:
    """The ``?position=`` asked for: None when there is none; a 404 naming it when it is not
    a position.

    >>> position_asked(None), position_asked(""), position_asked("3")
    (None, None, 3)
    """
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_POSITION:
        abort(404, description=f"Position {raw!r} is not an item's place: positions are whole numbers from 1.")
    return int(raw)


def percent(progress: dict) -> float:
    """How far the reviewer has come, in percent.

    >>> percent({"done": 3, "total": 6}), percent({"done": 0, "total": 0})
    (50.0, 0.0)
    """
    return round(100.0 * progress["done"] / progress["total"], 1) if progress["total"] else 0.0


# ---------------------------------------------------------------------- the pages
def _page(job, suite: str, data: dict, form=None, errors: dict | None = None, status: int = 200):
    """The item at ``data["position"]``, or the summary once every item is scored."""
    item = data["item"]
    if item is None:
        return render_template("console/reviews/done.html", job=job, suite=suite, data=data,
                               title=TITLES[suite], view=VIEWS[suite], percent=percent(data["progress"])), status
    template = "console/reviews/ei.html" if suite == "ei" else "console/reviews/brand_voice.html"
    return render_template(template, job=job, suite=suite, data=data, item=item, title=TITLES[suite],
                           view=VIEWS[suite], chosen=chosen(item, form), errors=errors or {},
                           percent=percent(data["progress"]), scale=SCALE), status


def _review(job_id: str, suite: str):
    job = reviews.reviewable_job(g.user, job_id)
    if request.method == "GET":
        position = position_asked(request.args.get("position"))
        data = reviews.item(g.user, job, suite, position)
        if position is not None and data["item"] is None:
            total = data["progress"]["total"]
            abort(404, description=f"There is no item {position}: this job has {total} "
                                   f"{TITLES[suite].lower()} item{'s' if total != 1 else ''} to review.")
        return _page(job, suite, data)
    position = position_asked(request.form.get("position")) or 1
    data = reviews.item(g.user, job, suite, position)
    if data["item"] is None or data["item"]["id"] != request.form.get("item_id"):
        flash("The items under review changed since that page was loaded: this is the item now at its place; "
              "nothing was saved.", "error")
        return redirect(url_for(VIEWS[suite], job_id=job.id, position=position))
    req, errors = review_request(suite, request.form, data["item"])
    if req is not None:
        try:
            saved = reviews.save(g.user, job, req)
        except ConfigError as exc:
            errors = {form_field(p.field): p.message for p in exc.problems}
        except Conflict as exc:          # the evaluation under review changed meanwhile
            flash(f"Not saved: {exc.message}.", "error")
            return redirect(url_for(VIEWS[suite], job_id=job.id, position=position))
        else:
            done = saved["progress"]
            flash(f"Saved item {position}: {done['done']} of {done['total']} scored.", "ok")
            nxt = saved["next_position"]
            return redirect(url_for(VIEWS[suite], job_id=job.id, position=nxt) if nxt
                            else url_for(VIEWS[suite], job_id=job.id))
    return _page(job, suite, data, form=request.form, errors=errors, status=400)


@bp.route("/jobs/<job_id>/review/ei", methods=["GET", "POST"])
def review_ei(job_id):
    return _review(job_id, "ei")


@bp.route("/jobs/<job_id>/review/brand-voice", methods=["GET", "POST"])
def review_brand_voice(job_id):
    return _review(job_id, "brand_voice")

