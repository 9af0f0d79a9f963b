"""Each measure from the evaluation's parts, against the documents' targets
(``shared.evaluation.targets``). Pure: the handler builds them when its evaluation ends, the
control plane again when people's or the judge's scores arrive."""
from __future__ import annotations

from shared.evaluation import targets
from shared.evaluation.report import Measure
from shared.evaluation.targets import Status


def perplexity(part: dict | None) -> Measure:
    """Held-out perplexity, lower is better; the improvement is how much lower, in percent.

    >>> m = perplexity({"base": {"perplexity": 20.0}, "trained": {"perplexity": 12.0},
    ...                 "improvement_pct": 40.0, "interval_pct": [31.0, 47.5], "conversations": 3,
    ...                 "split": "validation"})
    >>> m.status, m.interval, m.target
    (<Status.MET: 'met'>, [31.0, 47.5], 30.0)
    """
    name = "Held-out perplexity"
    if not part:
        return Measure(id="perplexity", name=name, unit="perplexity", status=Status.NOT_MEASURED,
                       target=targets.PERPLEXITY_IMPROVEMENT_PCT)
    note = None if part["split"] == "validation" else (
        "No held-out split: scored on the training conversations, which says nothing of new ones.")
    return Measure(
        id="perplexity", name=name, unit="perplexity (lower is better)",
        base=part["base"]["perplexity"], adapter=part["trained"]["perplexity"],
        improvement=part["improvement_pct"], improvement_unit="% lower", interval=part.get("interval_pct"),
        target=targets.PERPLEXITY_IMPROVEMENT_PCT, target_text="at least 30% lower than the base model",
        status=(targets.at_least(part["improvement_pct"], targets.PERPLEXITY_IMPROVEMENT_PCT)
                if part["split"] == "validation" else Status.NOT_MEASURED),
        n=part["conversations"], note=note)


def forgetting(part: dict | None) -> Measure:
    """Financial-knowledge accuracy; the improvement is the retention, adapter / base in percent."""
    name = "Forgetting check (financial knowledge)"
    if not part:
        return Measure(id="forgetting", name=name, unit="% correct", status=Status.NOT_MEASURED,
                       target=targets.FORGETTING_RETENTION_PCT)
    base, adapter = part["base"]["accuracy"], part["adapter"]["accuracy"]
    retention = part["retention_pct"]
    return Measure(
        id="forgetting", name=name, unit="% of questions right",
        base=round(100 * base, 2) if base is not None else None,
        adapter=round(100 * adapter, 2) if adapter is not None else None,
        improvement=retention, improvement_unit="% of the base model's accuracy kept",
        target=targets.FORGETTING_RETENTION_PCT, target_text="at least 95% of the base model's accuracy kept",
        status=targets.at_least(retention, targets.FORGETTING_RETENTION_PCT), n=part["questions"],
        note=targets.FORGETTING_ADVICE if retention is not None and retention < targets.FORGETTING_RETENTION_PCT else None)


def similarity(part: dict | None) -> Measure:
    """Cosine similarity of held-out answers to the reference replies; the improvement is
    the adapter's win rate (closer to the reference), a supporting figure without a target."""
    name = "Similarity to the reference replies"
    if not part or not part.get("n"):
        return Measure(id="reference_similarity", name=name, unit="cosine similarity",
                       status=Status.NOT_MEASURED)
    rate = part["win_rate"]
    return Measure(
        id="reference_similarity", name=name, unit="mean cosine similarity (all-MiniLM-L6-v2)",
        base=part["base_mean"], adapter=part["adapter_mean"],
        improvement=round(100 * rate["rate"], 2), improvement_unit="% of held-out turns closer (ties half)",
        interval=[round(100 * x, 2) for x in rate["interval"]] if rate["interval"] else None,
        status=Status.INFORMATIONAL, n=part["n"])


def _coverage(review: dict, items: str) -> str:
    return f" {review['n']} of {review['items']} {items} scored so far: it waits for the rest."


EI_HEAD = dict(id="emotional_intelligence", name="Emotional intelligence (people's blind scores)",
               unit="mean score of 5", target=targets.EMOTIONAL_INTELLIGENCE_IMPROVEMENT_PCT,
               target_text="at least 40% better than the base model, scored by people", scored_by="people")


def emotional_intelligence(review: dict | None = None, available: bool = True) -> Measure:
    """People's 1-5 scores on empathy, clarity and appropriateness, base against adapter;
    it waits for review until people have scored every scenario (``available``: the run
    answered the scenarios at all)."""
    if not available:
        return Measure(**EI_HEAD, status=Status.NOT_MEASURED,
                       note="This evaluation generated no answers to the scenarios (perplexity only).")
    if not review:
        return Measure(**EI_HEAD, status=Status.WAITING_FOR_REVIEW,
                       note="The answers to the scenarios are generated; people's blind scores decide this measure.")
    improvement = review["improvement_pct"]
    complete = review.get("complete", True)
    return Measure(**EI_HEAD, base=review["base"], adapter=review["adapter"], improvement=improvement,
                   improvement_unit="% better", interval=review.get("interval_pct"), n=review.get("n"),
                   status=(targets.at_least(improvement, targets.EMOTIONAL_INTELLIGENCE_IMPROVEMENT_PCT)
                           if complete else Status.WAITING_FOR_REVIEW),
                   note=_people_note(review, "scenarios") + ("" if complete else _coverage(review, "scenarios")))


def _people_note(review: dict, items: str) -> str:
    """Who scored, and how far they agree.

    >>> _people_note({"reviewers": 2, "n": 10, "agreement": 0.61}, "scenarios")
    "2 reviewers scored 10 scenarios blind; their agreement (Krippendorff's alpha) is 0.61."
    """
    who = f"{review['reviewers']} reviewer{'s' if review['reviewers'] != 1 else ''} scored {review['n']} {items} blind"
    if review.get("agreement") is None:
        return who + ("; agreement needs two reviewers." if review["reviewers"] < 2 else ".")
    return who + f"; their agreement (Krippendorff's alpha) is {review['agreement']:.2f}."


BRAND_HEAD = dict(id="brand_voice", name="Brand voice (people's scores on the rubric)", unit="average of 5",
                  target=targets.BRAND_VOICE_AVERAGE, target_text="an average of at least 4.25 of 5 (85%)",
                  scored_by="people")


def brand_voice(review: dict | None = None, available: bool = True) -> Measure:
    """People's rubric scores on the adapter's held-out answers; it waits for review until
    every sampled answer has been scored."""
    if not available:
        return Measure(**BRAND_HEAD, status=Status.NOT_MEASURED,
                       note="This evaluation generated no held-out answers (perplexity only).")
    if not review:
        return Measure(**BRAND_HEAD, status=Status.WAITING_FOR_REVIEW,
                       note="People score 30 of the adapter's answers on the brand-voice rubric.")
    flagged = len(review.get("flagged", []))
    complete = review.get("complete", True)
    note = _people_note(review, "answers") + (f" {flagged} answer{'s' if flagged != 1 else ''} scored under 3 "
                                               "on a characteristic." if flagged else "")
    return Measure(**BRAND_HEAD, adapter=review["average"], improvement=review["percent"],
                   improvement_unit="% of the top score", n=review.get("n"),
                   status=(targets.at_least(review["average"], targets.BRAND_VOICE_AVERAGE)
                           if complete else Status.WAITING_FOR_REVIEW),
                   note=note + ("" if complete else _coverage(review, "answers")))


def judge(report: dict) -> Measure:
    """The automatic judge's pairwise verdicts: supporting evidence, never the people's measure."""
    rate = report["win_rate"]
    return Measure(
        id="judge", name=f"Automatic judge ({report['model']}), pairwise", unit="verdicts",
        improvement=round(100 * rate["rate"], 2) if rate["rate"] is not None else None,
        improvement_unit="% of pairs won by the adapter (ties half)",
        interval=[round(100 * x, 2) for x in rate["interval"]] if rate.get("interval") else None,
        status=Status.INFORMATIONAL, scored_by="model", n=rate["n"],
        note=f"Scored by an automatic judge ({report['model']}), a model, not people: "
             f"{rate['wins']} won, {rate['ties']} tied, {rate['losses']} lost.")


def all_measures(parts: dict[str, dict | None], *, judge_report: dict | None = None,
                 ei_review: dict | None = None, brand_review: dict | None = None,
                 answered: frozenset[str] | None = None) -> list[Measure]:
    """The measures in the order the report shows them; ``answered``: the suites the run
    generated answers for (None: unknown, as if all)."""
    def has(suite: str) -> bool:
        return answered is None or suite in answered
    out = [perplexity(parts.get("perplexity")), emotional_intelligence(ei_review, has("ei")),
           forgetting(parts.get("forgetting")), brand_voice(brand_review, has("heldout")),
           similarity(parts.get("similarity"))]
    if judge_report:
        out.append(judge(judge_report))
    return out
