"""A job's evaluation in the console: the before/after page (``/jobs/<id>/evaluation``: each
sample's prompt, the base model's and the adapter's answers side by side, the reference and
the scores, one suite and category at a time, 10 a page) and the re-evaluate form
(``POST /jobs/<id>/evaluate``). The figures come from ``services.evaluations``; the measure
cards are the ``measure_cards`` macro of ``templates/console/_evaluation.html``.

A query the evaluation cannot answer (an unknown run, suite or category) gets the 404 page
saying what there is instead; a page past the end shows the last page and says so.
"""
from __future__ import annotations

import math

from flask import abort, flash, g, redirect, render_template, request, url_for
from pydantic import ValidationError

from control.console.blueprint import bp
from control.console.filters import number
from control.models import TrainingFile, TrainingFileStatus, TrainingJob, User
from control.models.training_file import FilePurpose
from control.schemas import EvaluationRequest
from control.services import evaluations, training_files
from control.services.access import visible_job
from control.services.exceptions import JobStateError, NotFound
from control.services.training_files import FileNotReady
from shared.evaluation.report import SUITE_NAMES, SUITES

PER_PAGE = 10
MAX_PAGE = 100_000

# What a measure's status says on its card, and the badge's tone (informational: no badge).
STATUS_TEXT = {"met": "target met", "not_met": "target not met",
               "waiting_for_review": "waiting for people's scores", "not_measured": "not measured"}
STATUS_TONE = {"met": "ok", "not_met": "bad", "waiting_for_review": "warn", "not_measured": "muted"}
SCORED_BY = {"computed": "Computed from both models' outputs", "model": "Scored by a model (automatic judge)",
             "people": "Scored by people"}
VERDICTS = {"win": "the adapter's answer is better", "loss": "the base model's answer is better",
            "tie": "a tie", "invalid": "no verdict"}
# An improvement below zero reads as its opposite: "12.0% higher", not "-12.0% lower".
OPPOSITES = {"% lower": "% higher", "% better": "% worse"}


# ---------------------------------------------------------------------- what the cards say
@bp.app_template_filter("improvement")
def improvement_text(measure: dict) -> str | None:
    """A measure's improvement with its unit and 95% interval, as its card says it.

    >>> improvement_text({"improvement": 32.5, "improvement_unit": "% lower", "interval": [18.0, 41.24]})
    '32.5% lower [18.0, 41.2]'
    >>> improvement_text({"improvement": -12.0, "improvement_unit": "% lower", "interval": [-20.1, -3.0]})
    '12.0% higher [3.0, 20.1]'
    >>> improvement_text({"improvement": 97.87, "improvement_unit": "% of the base model's accuracy kept"})
    "97.9% of the base model's accuracy kept"
    >>> improvement_text({"improvement": None}) is None
    True
    """
    value, unit = measure.get("improvement"), measure.get("improvement_unit") or ""
    if value is None:
        return None
    interval = measure.get("interval")
    if value < 0 and unit in OPPOSITES:
        value, unit = -value, OPPOSITES[unit]
        interval = sorted(-x for x in interval) if interval else None
    text = f"{value:.1f}{'' if unit.startswith('%') else ' '}{unit}".rstrip()
    if interval:
        text += f" [{interval[0]:.1f}, {interval[1]:.1f}]"
    return text


@bp.app_template_filter("base_to_adapter")
def base_to_adapter(measure: dict) -> str | None:
    """Base and adapter figures of a measure, the way they moved.

    >>> base_to_adapter({"base": 31.662, "adapter": 21.387})
    '31.66 → 21.39'
    >>> base_to_adapter({"base": None, "adapter": 4.3}), base_to_adapter({})
    ('adapter 4.3', None)
    """
    base, adapter = measure.get("base"), measure.get("adapter")
    if base is None and adapter is None:
        return None
    if base is None:
        return f"adapter {number(adapter)}"
    return f"{number(base)} → {number(adapter)}"


@bp.app_template_global("measure_status")
def measure_status(status: str) -> dict | None:
    """The badge of a measure's status: its words and tone; None for a supporting figure.

    >>> measure_status("waiting_for_review"), measure_status("informational")
    ({'text': "waiting for people's scores", 'tone': 'warn'}, None)
    """
    if status not in STATUS_TEXT:
        return None
    return {"text": STATUS_TEXT[status], "tone": STATUS_TONE[status]}


@bp.app_template_global("scored_by")
def scored_by(who: str) -> str:
    return SCORED_BY.get(who, who)


@bp.app_template_global("suite_name")
def suite_name(suite: str) -> str:
    return SUITE_NAMES.get(suite, suite)


# ---------------------------------------------------------------------- people's scores
def agreement_text(alpha: float | None, reviewers: int) -> str:
    """Krippendorff's alpha between reviewers, as a card says it.

    >>> agreement_text(0.6132, 2), agreement_text(None, 1)
    ('0.61', 'needs two reviewers')
    >>> agreement_text(None, 2)
    'not measurable yet: no answer scored by two reviewers with any spread'
    """
    if reviewers < 2:
        return "needs two reviewers"
    if alpha is None:
        return "not measurable yet: no answer scored by two reviewers with any spread"
    return f"{alpha:.2f}"


def win_rate_text(rate: dict | None) -> str | None:
    """The adapter's preference win rate with its 95% interval.

    >>> win_rate_text({"rate": 0.8333, "interval": [0.5, 1.0], "n": 12, "wins": 9, "ties": 2, "losses": 1})
    '83.3% [50.0, 100.0] of 12 preferences (9 adapter, 2 ties, 1 base model)'
    >>> win_rate_text({"rate": None, "n": 0}) is None
    True
    """
    if not rate or rate.get("rate") is None:
        return None
    text = f"{100 * rate['rate']:.1f}%"
    if rate.get("interval"):
        text += f" [{100 * rate['interval'][0]:.1f}, {100 * rate['interval'][1]:.1f}]"
    return (text + f" of {rate['n']} preferences ({rate['wins']} adapter, {rate['ties']} "
            f"tie{'s' if rate['ties'] != 1 else ''}, {rate['losses']} base model)")


@bp.app_template_filter("flagged_low")
def flagged_low(low: dict[str, int]) -> str:
    """The characteristics an answer was scored under 3 on.

    >>> flagged_low({"Warmth": 2, "Directness": 1})
    'Warmth 2, Directness 1'
    """
    return ", ".join(f"{name} {score}" for name, score in low.items())


@bp.app_template_global("people_figures")
def people_figures(measure_id: str, people: dict | None) -> list[tuple[str, str, str]] | None:
    """What people's scores add to a measure's card: (key, label, text) rows; None for a
    measure people do not score, or before anyone has.

    >>> people_figures("emotional_intelligence", {"ei": {"reviewers": 1, "n": 6, "agreement": None,
    ...     "win_rate": {"rate": 1.0, "interval": [1.0, 1.0], "n": 6, "wins": 6, "ties": 0, "losses": 0}}})[1:]
    [('win_rate', "The adapter's win rate", '100.0% [100.0, 100.0] of 6 preferences (6 adapter, 0 ties, 0 base model)'), ('agreement', "Agreement (Krippendorff's alpha)", 'needs two reviewers')]
    >>> people_figures("brand_voice", {"brand": {"average": 4.3, "percent": 86.0, "n": 23, "reviewers": 2,
    ...                                          "agreement": 0.4, "flagged": []}})[1]
    ('average', 'Average', '4.30 of 5 (86.0%)')
    """
    key = {"emotional_intelligence": "ei", "brand_voice": "brand"}.get(measure_id)
    found = (people or {}).get(key) if key else None
    if not found:
        return None
    items = "scenarios" if key == "ei" else "answers"
    rows = [("reviewers", "Reviewers", f"{found['reviewers']}, on {found['n']} {items}")]
    if key == "ei":
        rate = win_rate_text(found.get("win_rate"))
        if rate:
            rows.append(("win_rate", "The adapter's win rate", rate))
    else:
        rows.append(("average", "Average", f"{found['average']:.2f} of 5 ({found['percent']:.1f}%)"))
    rows.append(("agreement", "Agreement (Krippendorff's alpha)", agreement_text(found.get("agreement"),
                                                                                 found["reviewers"])))
    return rows


def prompt_parts(messages: list[dict]) -> tuple[list[dict], dict | None]:
    """A prompt's earlier turns (the system prompt too) and its last user message.

    >>> prompt_parts([{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}])
    ([{'role': 'system', 'content': 's'}], {'role': 'user', 'content': 'hi'})
    >>> prompt_parts([])
    ([], None)
    """
    last = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=None)
    if last is None:
        return list(messages), None
    return list(messages[:last]), messages[last]


def whole_page(raw: str | None) -> int | None:
    """The page a query asks for, or None when it is not a page number.

    >>> whole_page("2"), whole_page(None), whole_page("0"), whole_page("two")
    (2, 1, None, None)
    """
    if raw is None or raw == "":
        return 1
    try:
        page = int(raw)
    except ValueError:
        return None
    return page if 1 <= page <= MAX_PAGE else None


# ---------------------------------------------------------------------- the before/after page
def _suite_of(view: dict, asked: str | None) -> str | None:
    """The suite to show: the one asked for (404 when this evaluation has none), else the first."""
    present = [s for s in SUITES if s in view["suites"]]
    if not asked:
        return present[0] if present else None
    if asked not in present:
        have = ", ".join(f"{s} ({SUITE_NAMES[s]})" for s in present) or "none"
        abort(404, description=f"This evaluation has no suite {asked!r}; its suites are: {have}.")
    return asked


def _page_of(job: TrainingJob, view: dict, suite: str, category: str | None) -> tuple[dict, str | None]:
    """One page of the suite's samples, and a notice when the page asked for was not one."""
    asked = whole_page(request.args.get("page"))
    data = evaluations.samples(job, suite, run_id=view["run"]["id"], category=category,
                               page=asked or 1, per_page=PER_PAGE, clamp=True, viewer=g.user)
    if category and category not in data["categories"]:
        have = ", ".join(data["categories"]) or "none"
        abort(404, description=f"The {SUITE_NAMES[suite]} have no category {category!r}; "
                               f"their categories are: {have}.")
    pages = max(1, math.ceil(data["total"] / PER_PAGE))
    notice = None
    if asked is None:
        notice = f"Page {request.args.get('page')!r} is not a page number: showing page 1 of {pages}."
    elif asked > pages:
        notice = f"There is no page {asked}: showing the last page, {pages} of {pages}."
    data["pages"] = pages
    for s in data["samples"]:
        s["earlier"], s["last"] = prompt_parts(s["prompt"])
    return data, notice


@bp.get("/jobs/<job_id>/evaluation")
def job_evaluation(job_id):
    """Base against adapter, sample by sample (?suite=, ?category=, ?page=, ?run=)."""
    job = visible_job(g.user, job_id)
    view = evaluations.view(job, request.args.get("run") or None, viewer=g.user)   # an unknown run: 404
    suite = _suite_of(view, request.args.get("suite")) if view["status"] == "completed" else None
    category = request.args.get("category") or None
    data, notice = _page_of(job, view, suite, category) if suite else (None, None)
    return render_template("console/jobs/evaluation.html", job=job, view=view, suite=suite,
                           category=category, data=data, notice=notice, verdicts=VERDICTS,
                           suites=[s for s in SUITES if s in view.get("suites", {})],
                           run_arg=request.args.get("run") or None)


# ---------------------------------------------------------------------- the re-evaluate form
def evaluation_request(form) -> tuple[EvaluationRequest | None, str | None]:
    """The form's ``EvaluationRequest``, or what is wrong with it, naming the field.

    >>> evaluation_request({"size": "quick", "max_new_tokens": "128", "prompts_file_id": ""})[0]
    EvaluationRequest(size='quick', max_new_tokens=128, prompts_file_id=None)
    >>> evaluation_request({"size": "huge", "max_new_tokens": "0"})[1]
    "size: Input should be 'quick', 'full' or 'perplexity'; max_new_tokens: Input should be greater than or equal to 1"
    """
    body = {k: (form.get(k) or "").strip() for k in ("size", "max_new_tokens", "prompts_file_id")}
    try:
        return EvaluationRequest.model_validate({k: v for k, v in body.items() if v}, strict=False), None
    except ValidationError as exc:
        return None, "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {e['msg']}"
                               for e in exc.errors())


def prompts_files(user: User) -> list[TrainingFile]:
    """The user's ready files of purpose ``evaluation``: the prompts a re-evaluation may use."""
    return [f for f in training_files.listed(user, purpose=FilePurpose.EVALUATION)
            if f.status == TrainingFileStatus.READY]


@bp.post("/jobs/<job_id>/evaluate")
def evaluate_job(job_id):
    """Evaluate a completed job again; the result (or why not) is flashed on its page."""
    job = visible_job(g.user, job_id)
    req, problem = evaluation_request(request.form)
    if req is None:
        flash(f"Not evaluated: {problem}.", "error")
    else:
        try:
            run = evaluations.start(g.user, job, req)
        except (JobStateError, FileNotReady) as exc:
            flash(f"Not evaluated: {exc.message}.", "error")
        except NotFound as exc:           # the prompts file: not there, or someone else's
            flash(f"Not evaluated: {exc}.", "error")
        else:
            flash(f"Re-evaluation {run.id} queued ({req.size or 'default size'}, at most "
                  f"{req.max_new_tokens} new tokens an answer): its results appear here when it completes.",
                  "ok")
    return redirect(url_for("console.job_detail", job_id=job.id))      # the flash, at the top, in view
