"""The quality gate: each gated measure against its target, and the rules of a decision.

The four targets the documents set (``shared.evaluation.targets``) each stand ``met``,
``not_met`` or ``waiting_for_review`` (people have not scored yet; ``not_measured`` when
the run had nothing to measure it on). A reviewer approves or rejects with a reason; an
approval while a target is not met must say so in its reason, naming the measure.
"""
from __future__ import annotations

import re

from shared.evaluation.report import Measure
from shared.evaluation.targets import Status

GATED = ("perplexity", "emotional_intelligence", "forgetting", "brand_voice")
# Words that count as naming a measure in a reason.
NAMED_BY = {"perplexity": ("perplexity",),
            "emotional_intelligence": ("emotional", "empathy", "ei"),
            "forgetting": ("forgetting", "retention", "knowledge"),
            "brand_voice": ("brand", "voice")}
MAX_REASON = 2000


class DecisionRefused(ValueError):
    """A decision the gate's rules refuse; the message says what the reason must add."""


def value_text(m: Measure) -> str:
    """The measure's headline figure as people read it.

    >>> value_text(Measure(id="perplexity", name="p", unit="u", improvement=32.5,
    ...                    improvement_unit="% lower", status=Status.MET))
    '32.5% lower'
    >>> value_text(Measure(id="emotional_intelligence", name="e", unit="u", improvement=-6.1,
    ...                    improvement_unit="% better", status=Status.NOT_MET))
    '6.1% worse'
    """
    if m.status == Status.WAITING_FOR_REVIEW:
        return "waiting for people's scores"
    if m.id == "brand_voice" and m.adapter is not None:
        return f"{m.adapter:.2f} of 5 ({100 * m.adapter / 5:.1f}%)"
    if m.improvement is None and m.scored_by == "people" and m.status in (Status.MET, Status.NOT_MET):
        return "hidden until your own review is done"
    if m.improvement is None:
        return "not measured"
    if m.improvement < 0 and m.improvement_unit in ("% better", "% lower"):
        return f"{-m.improvement:g}% {'worse' if m.improvement_unit == '% better' else 'higher'}"
    return f"{m.improvement:g}{m.improvement_unit or ''}"


def items(measures: list[Measure]) -> list[dict]:
    """The gated measures, in order, each with its status, figure and target."""
    by_id = {m.id: m for m in measures}
    return [{"id": i, "name": by_id[i].name, "status": str(by_id[i].status),
             "value_text": value_text(by_id[i]), "target_text": by_id[i].target_text}
            for i in GATED if i in by_id]


def standing(gate_items: list[dict]) -> str:
    """``met`` when every target is met, ``not_met`` when one is missed or unmeasured,
    else ``waiting_for_review``.

    >>> standing([{"status": "met"}, {"status": "waiting_for_review"}])
    'waiting_for_review'
    """
    statuses = {i["status"] for i in gate_items}
    if statuses <= {Status.MET}:
        return "met"
    if statuses & {Status.NOT_MET, Status.NOT_MEASURED}:
        return "not_met"
    return "waiting_for_review"


def check_decision(decision: str, reason: str, gate_items: list[dict]) -> None:
    """Refuse a decision its reason does not support: every decision needs a reason, and an
    approval with a target not met must name each such measure in it.

    >>> check_decision("approved", "EI is short of 40%, but the client saw the answers",
    ...                [{"id": "emotional_intelligence", "name": "EI", "status": "not_met"}])
    >>> check_decision("approved", "Perplexity is short but clients liked it",
    ...                [{"id": "perplexity", "name": "Held-out perplexity", "status": "not_met"}])
    >>> check_decision("approved", "Looks good", [{"id": "perplexity", "name": "Held-out perplexity",
    ...                                           "status": "not_met"}])
    Traceback (most recent call last):
    ...
    shared.evaluation.gate.DecisionRefused: approving with a target not met needs the reason to say so: name Held-out perplexity (not met) in it
    """
    if decision not in ("approved", "rejected"):
        raise DecisionRefused(f"decision must be approved or rejected, not {decision!r}")
    if not reason or not reason.strip():
        raise DecisionRefused("a decision needs a reason")
    if len(reason) > MAX_REASON:
        raise DecisionRefused(f"the reason is longer than {MAX_REASON} characters")
    if decision == "rejected":
        return
    words = set(re.findall(r"[a-z]+", reason.lower()))
    unnamed = [i for i in gate_items if i["status"] != Status.MET
               and not any(word in words or (len(word) > 3 and any(w.startswith(word) for w in words))
                           for word in NAMED_BY.get(i["id"], (i["id"],)))]
    if unnamed:
        listed = ", ".join(f"{i['name']} ({str(i['status']).replace('_', ' ')})" for i in unnamed)
        raise DecisionRefused("approving with a target not met needs the reason to say so: "
                              f"name {listed} in it")
