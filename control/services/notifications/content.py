"""What one message says, whatever carries it: a ``Message`` (subject, headline, facts,
notes, lists, links) that ``slack.py`` turns into Block Kit and ``mail.py`` into an email's
HTML and text, and the few number formats every message shares. Pure: no database, no app.
"""
from __future__ import annotations

from dataclasses import dataclass

from control.services.formatting import money

#: A message's tone: its Slack emoji and its email's accent colour.
TONES = {"good": ":white_check_mark:", "bad": ":x:", "warn": ":warning:", "info": ":information_source:"}


@dataclass(frozen=True)
class Message:
    """One notice as people read it.

    - ``fields``: (label, value) facts, shown side by side (status, duration, cost...).
    - ``notes``: (label, text) paragraphs (a failure's cause and fix, a decision's reason).
    - ``lists``: (title, items) where each item is (text, url or None): the digest's jobs.
    - ``links``: (label, url) buttons: the job page, the validation report.
    """

    kind: str
    subject: str
    headline: str
    tone: str = "info"
    fields: tuple[tuple[str, str], ...] = ()
    notes: tuple[tuple[str, str], ...] = ()
    lists: tuple[tuple[str, tuple[tuple[str, str | None], ...]], ...] = ()
    links: tuple[tuple[str, str], ...] = ()
    footer: str = ""
    manage_url: str = ""          # where people change what they hear of

    @property
    def emoji(self) -> str:
        return TONES.get(self.tone, TONES["info"])

    def text(self) -> str:
        """The plain text of the message (an email's text part, Slack's notification text).

        >>> print(Message("job.completed", "Done", "It finished.", fields=(("Cost", "$1.00"),),
        ...               links=(("Open the job", "http://x/jobs/1"),)).text())
        It finished.
        <BLANKLINE>
        Cost: $1.00
        <BLANKLINE>
        Open the job: http://x/jobs/1
        """
        parts = [self.headline]
        if self.fields:
            parts.append("\n".join(f"{label}: {value}" for label, value in self.fields))
        for label, text in self.notes:
            parts.append(f"{label}: {text}")
        for title, items in self.lists:
            lines = [f"{title}:"] + [f"  - {t}" + (f" ({url})" if url else "") for t, url in items]
            parts.append("\n".join(lines) if items else f"{title}: none")
        if self.links:
            parts.append("\n".join(f"{label}: {url}" for label, url in self.links))
        if self.footer:
            parts.append(self.footer)
        return "\n\n".join(parts)


def percent(value, digits: int = 1) -> str:
    """
    >>> percent(32.456), percent(100), percent(None)
    ('32.5%', '100.0%', '—')
    """
    return "—" if value is None else f"{float(value):.{digits}f}%"


def cost_against_estimate(cost, estimate) -> str:
    """The cost so far against the estimate, with the share spent.

    >>> cost_against_estimate(0.42, 0.5)
    '$0.42 of the $0.50 estimate (84%)'
    >>> cost_against_estimate(1.2, None), cost_against_estimate(None, None)
    ('$1.20 (no estimate)', '—')
    """
    if cost is None:
        return "—"
    if not estimate:
        return f"{money(cost)} (no estimate)"
    return f"{money(cost)} of the {money(estimate)} estimate ({100 * float(cost) / float(estimate):.0f}%)"


def interruptions(count) -> str:
    """
    >>> interruptions(0), interruptions(1), interruptions(2)
    ('none', '1, resumed from a checkpoint', '2, each resumed from a checkpoint')
    """
    count = int(count or 0)
    if count == 0:
        return "none"
    return "1, resumed from a checkpoint" if count == 1 else f"{count}, each resumed from a checkpoint"


#: How the numbers a notice's payload carries are named in a message.
FIGURE_LABELS = {
    "percent": "Threshold", "threshold_pct": "Threshold", "threshold_percent": "Threshold",
    "limit_usd": "Monthly limit", "spent_usd": "Spent this month", "month_spend_usd": "Spent this month",
    "committed_usd": "Committed by running and queued jobs", "remaining_usd": "Remaining",
    "forecast_usd": "Forecast to month end", "cost_usd": "Cost so far", "projected_cost_usd": "Projected final cost",
    "estimate_usd": "Estimate", "over_pct": "Over the estimate by", "over_estimate_pct": "Over the estimate by",
    "spent_pct": "Share of the estimate spent", "approval_threshold_usd": "Approval threshold",
    "max_cost_usd": "Spend cap", "spend_24h_usd": "Spend, last 24 hours", "spend_month_usd": "Spend this month",
}
#: Payload keys the job's own facts already show (or that are not figures).
NOT_FIGURES = {"job_id", "actual_cost_usd", "cost_estimate_usd", "interruptions", "attempt",
               "resumed_from_step", "silent_seconds", "stall_limit_seconds",
               "perplexity_improvement_pct", "forgetting_retention", "projected_usd"}


def figure(key: str, value) -> str:
    """One payload number in words: dollars for ``*_usd``, percent for ``*pct``/``percent``.

    >>> figure("limit_usd", 500), figure("percent", 80), figure("over_pct", 23.4), figure("steps", 12)
    ('$500.00', '80%', '23.4%', '12')
    """
    if key.endswith("_usd"):
        return money(value)
    if key.endswith("pct") or key.endswith("percent"):
        return f"{float(value):.0f}%" if float(value) == int(float(value)) else percent(value)
    return f"{value:,}" if isinstance(value, int) else f"{float(value):,.4g}"


def figures(payload: dict) -> tuple[tuple[str, str], ...]:
    """Every number of a payload the job's facts do not already show, labelled.

    >>> figures({"percent": 95, "limit_usd": 500.0, "spent_usd": 476.2, "job_id": "tj_1", "month": "2026-12"})
    (('Threshold', '95%'), ('Monthly limit', '$500.00'), ('Spent this month', '$476.20'))
    """
    out = []
    for key, value in payload.items():
        if key in NOT_FIGURES or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        out.append((FIGURE_LABELS.get(key, key.replace("_usd", "").replace("_", " ").capitalize()),
                    figure(key, value)))
    return tuple(out)
