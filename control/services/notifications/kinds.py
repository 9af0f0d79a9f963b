"""Each notice kind in words: ``compose(facts)`` is the ``Message`` (subject, headline,
facts, notes, links) for one notice's facts (``facts.gather``). Pure, so every kind can be
rendered without a database (``scripts/notification_examples.py``).

A job message carries the job's name, status, duration, cost against the estimate and its
interruptions; once evaluated, the headline measures against their targets; a link to the
job page and, when there is one, to the validation report. A failure carries its cause and
its fix; money alerts name the numbers their payload carries.
"""
from __future__ import annotations

from dataclasses import replace

from control.services.formatting import minutes, money
from control.services.notifications.content import (Message, cost_against_estimate, figure, figures, interruptions,
                                                    percent)
from shared.evaluation.targets import FORGETTING_RETENTION_PCT, PERPLEXITY_IMPROVEMENT_PCT


def first(payload: dict, *keys, default=None):
    """The first of ``keys`` the payload has a value for.

    >>> first({"threshold_pct": 80}, "percent", "threshold_pct")
    80
    """
    return next((payload[k] for k in keys if payload.get(k) is not None), default)


def measure_fields(job: dict) -> list[tuple[str, str]]:
    """The headline measures once evaluated, against the documents' targets.

    >>> measure_fields({"perplexity_pct": 32.5, "retention_pct": 100.0})
    [('Held-out perplexity', '32.5% better (target ≥30%)'), ('Knowledge kept', '100.0% (target ≥95%)')]
    >>> measure_fields({"perplexity_pct": None, "retention_pct": None})
    []
    """
    out = []
    if job.get("perplexity_pct") is not None:
        out.append(("Held-out perplexity",
                    f"{percent(job['perplexity_pct'])} better (target ≥{PERPLEXITY_IMPROVEMENT_PCT:.0f}%)"))
    if job.get("retention_pct") is not None:
        out.append(("Knowledge kept", f"{percent(job['retention_pct'])} (target ≥{FORGETTING_RETENTION_PCT:.0f}%)"))
    return out


def job_fields(job: dict) -> list[tuple[str, str]]:
    return [("Status", job["status"].replace("_", " ")), ("Duration", minutes(job.get("duration_min"))),
            ("Cost", cost_against_estimate(job.get("cost_usd"), job.get("estimate_usd"))),
            ("Interruptions", interruptions(job.get("interruptions"))), *measure_fields(job)]


def job_links(job: dict, report: bool) -> tuple[tuple[str, str], ...]:
    links = [("Open the job", job["job_url"])]
    if report:
        links.append(("Validation report", job["report_url"]))
    return tuple(links)


def has_report(job: dict) -> bool:
    return job["status"] == "completed" or job.get("perplexity_pct") is not None


def job_message(facts: dict, subject: str, headline: str, tone: str, *, notes=(), extra_fields=(),
                report: bool | None = None, link_label: str | None = None) -> Message:
    job = facts["job"]
    links = job_links(job, has_report(job) if report is None else report)
    if link_label:
        links = ((link_label, job["job_url"]), *links[1:])
    owner = f" · {job['owner']}" if job.get("owner") else ""
    return Message(kind=facts["kind"], subject=subject, headline=headline, tone=tone,
                   fields=tuple(job_fields(job)) + tuple(extra_fields), notes=tuple(n for n in notes if n[1]),
                   links=links, footer=f"BrightRun · job {job['id']}{owner}")


# ---------------------------------------------------------------------- the kinds
def completed(facts):
    job = facts["job"]
    gain = (f" Held-out perplexity is {percent(job['perplexity_pct'])} better."
            if job.get("perplexity_pct") is not None else "")
    return job_message(facts, f"Job “{job['name']}” completed",
                       f"“{job['name']}” completed in {minutes(job.get('duration_min'))}, costing "
                       f"{money(job.get('cost_usd'))}.{gain}", "good")


def failed(facts):
    job = facts["job"]
    error = job.get("error") or {}
    kind = (error.get("type") or "error").replace("_", " ")
    return job_message(facts, f"Job “{job['name']}” failed: {kind}",
                       f"“{job['name']}” failed after {minutes(job.get('duration_min'))}: "
                       f"{error.get('message') or 'no message'}", "bad",
                       notes=(("Cause", error.get("cause")), ("Fix", error.get("fix"))))


def cancelled(facts):
    job = facts["job"]
    return job_message(facts, f"Job “{job['name']}” was cancelled",
                       f"“{job['name']}” was cancelled after {minutes(job.get('duration_min'))}; "
                       f"it cost {money(job.get('cost_usd'))}.", "info", report=False)


def stalled(facts):
    job, p = facts["job"], facts["payload"]
    silent = first(p, "silent_seconds")
    since = f" for {minutes(silent / 60)}" if silent is not None else ""
    return job_message(facts, f"Job “{job['name']}” has stalled",
                       f"No progress from “{job['name']}”{since}. If its worker is lost, a new attempt "
                       "resumes from the last checkpoint; you can also cancel it.", "warn", report=False)


def recovered(facts):
    job, p = facts["job"], facts["payload"]
    step = first(p, "resumed_from_step")
    where = f" from step {step}" if step is not None else " from its last checkpoint"
    attempt = f" (attempt {p['attempt']})" if p.get("attempt") else ""
    return job_message(facts, f"Job “{job['name']}” resumed after an interruption",
                       f"“{job['name']}” was interrupted and resumed{where}{attempt}. "
                       f"Interrupted {job.get('interruptions') or 1}x, resumed successfully.", "info", report=False)


def awaiting_approval(facts):
    job, p = facts["job"], facts["payload"]
    threshold = first(p, "approval_threshold_usd", "threshold_usd")
    above = f", above the {money(threshold)} approval threshold" if threshold is not None else ""
    by = f" by {job['owner']}" if job.get("owner") else ""
    return job_message(facts, f"Job “{job['name']}” waits for an admin's approval",
                       f"“{job['name']}”{by} is estimated at {money(job.get('estimate_usd'))}{above}. "
                       "An admin approves it (it is queued) or declines it.", "warn",
                       extra_fields=figures(p), report=False, link_label="Approve or decline")


def approval_decided(facts):
    job, p = facts["job"], facts["payload"]
    state = str(first(p, "decision", "state", default=job.get("approval", {}).get("state") or "decided"))
    word = {"approved": "approved", "declined": "declined", "rejected": "declined"}.get(state, state)
    by = first(p, "decided_by", "by", default=job.get("approval", {}).get("by"))
    reason = first(p, "reason", default=job.get("approval", {}).get("reason"))
    then = " It is queued to run." if word == "approved" else ""
    return job_message(facts, f"Job “{job['name']}” was {word}",
                       f"“{job['name']}” was {word}{f' by {by}' if by else ''}.{then}",
                       "good" if word == "approved" else "bad", notes=(("Reason", reason),), report=False)


def cost_alert(facts):
    job, p = facts["job"], facts["payload"]
    share = first(p, "percent", "threshold_pct", "threshold_percent", "threshold")
    cost = first(p, "cost_usd", "actual_cost_usd", default=job.get("cost_usd"))
    estimate = first(p, "estimate_usd", "cost_estimate_usd", default=job.get("estimate_usd"))
    passed = f"{figure('percent', share)} of its estimate" if share is not None else "a share of its estimate"
    return job_message(facts, f"Job “{job['name']}” has spent {passed}",
                       f"“{job['name']}” has cost {money(cost)} of its {money(estimate)} estimate with steps "
                       "still to run. Cancel it now if the rest is not worth it.", "warn",
                       extra_fields=figures(p), report=False)


def over_estimate(facts):
    job, p = facts["job"], facts["payload"]
    projected = first(p, "projected_usd", "projected_cost_usd", "cost_usd",
                      default=job.get("projected_usd") or job.get("cost_usd"))
    estimate = first(p, "estimate_usd", "cost_estimate_usd", default=job.get("estimate_usd"))
    over = (100 * (float(projected) / float(estimate) - 1)) if projected and estimate else None
    how_much = f" ({over:.0f}% over)" if over is not None else ""
    return job_message(facts, f"Job “{job['name']}” is over its estimate",
                       f"“{job['name']}” is heading for {money(projected)} against its {money(estimate)} "
                       f"estimate{how_much}.", "warn", extra_fields=figures(p), report=False)


def evaluation_ready(facts):
    job = facts["job"]
    said = [f"held-out perplexity {percent(job['perplexity_pct'])} better" if job.get("perplexity_pct") is not None
            else None,
            f"{percent(job['retention_pct'])} of the base model's knowledge kept"
            if job.get("retention_pct") is not None else None]
    said = [s for s in said if s]
    return job_message(facts, f"Evaluation of “{job['name']}” is ready",
                       f"The evaluation of “{job['name']}” is ready" + (f": {', '.join(said)}." if said else "."),
                       "good", report=True)


def delivery(facts):
    job, p = facts["job"], facts["payload"]
    approved = facts["kind"] == "delivery.approved"
    word = "approved" if approved else "rejected"
    by = first(p, "decided_by")
    return job_message(facts, f"“{job['name']}” {word} for delivery",
                       f"The model of “{job['name']}” was {word} for delivery{f' by {by}' if by else ''}.",
                       "good" if approved else "bad", notes=(("Reason", first(p, "reason")),), report=True)


def budget_threshold(facts):
    p, base = facts["payload"], facts["base_url"]
    share = first(p, "percent", "threshold_pct", "threshold_percent", "threshold")
    spent = first(p, "spent_usd", "month_spend_usd", "spent")
    limit = first(p, "limit_usd", "limit")
    month = f" in {p['month']}" if p.get("month") else " this month"
    share = figure("percent", share) if share is not None else "a threshold"
    return Message(kind=facts["kind"], subject=f"Team budget: {share} of the monthly limit spent",
                   headline=f"The team has spent {money(spent)} of its {money(limit)} monthly budget{month} "
                   f"({share} threshold). New jobs are refused once the limit is reached.",
                   tone="warn", fields=figures(p), links=(("Open the budget", f"{base}/budget"),),
                   footer="BrightRun · team budget")


def digest(facts):
    p, base = facts["payload"], facts["base_url"]
    day = p.get("date") or (facts["created_at"].date().isoformat() if facts.get("created_at") else "today")

    def items(key):
        return tuple((str(j.get("name") or j.get("id")), f"{base}/jobs/{j['id']}" if j.get("id") else None)
                     for j in p.get(key) or [])
    finished, failed_, running = items("finished"), items("failed"), items("running")
    totals = {"finished": len(finished), "failed": len(failed_), "running": len(running), **(p.get("totals") or {})}
    return Message(kind="digest", subject=(f"Your BrightRun digest for {day}: {totals['finished']} finished, "
                                           f"{totals['failed']} failed, {totals['running']} running"),
                   headline=f"The last 24 hours of your jobs, to {day}.", tone="info",
                   fields=(("Spend, last 24 hours", money(p.get("spend_24h_usd"))),
                           ("Spend this month", money(p.get("spend_month_usd")))),
                   lists=(("Finished", finished), ("Failed", failed_), ("Running", running)),
                   links=(("Your jobs", f"{base}/jobs"),), footer="BrightRun · daily digest")


KINDS = {"job.completed": completed, "job.failed": failed, "job.cancelled": cancelled, "job.stalled": stalled,
         "job.recovered": recovered, "job.awaiting_approval": awaiting_approval,
         "job.approval_decided": approval_decided, "job.cost_alert": cost_alert,
         "job.over_estimate": over_estimate, "evaluation.ready": evaluation_ready,
         "delivery.approved": delivery, "delivery.rejected": delivery,
         "budget.threshold": budget_threshold, "digest": digest}


def compose(facts: dict) -> Message:
    """The message of a notice's facts. A job notice whose job is unknown (neither row nor
    snapshot) is told plainly rather than dropped."""
    kind = facts["kind"]
    if kind not in ("budget.threshold", "digest") and facts.get("job") is None:
        msg = Message(kind=kind, subject=f"BrightRun: {kind}", headline=f"{kind}: the job is gone.",
                      fields=figures(facts["payload"]), footer="BrightRun")
    else:
        msg = KINDS[kind](facts)
    return replace(msg, manage_url=f"{facts['base_url']}/account/notifications")
