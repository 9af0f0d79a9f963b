"""The product documents' targets, and what a measure's status says.

- held-out perplexity at least 30% better than the base model's;
- the emotional-intelligence suite, scored by people, at least 40% better;
- the forgetting check: at least 95% of the base model's accuracy kept;
- brand voice: an average of at least 4.25 of 5 over the rubric's 10 characteristics.

A measure that needs people's scores and has none is ``waiting_for_review``, never ``met``.
"""
from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    MET = "met"
    NOT_MET = "not_met"
    WAITING_FOR_REVIEW = "waiting_for_review"     # waits for people's scores
    NOT_MEASURED = "not_measured"         # this run had nothing to measure it on
    INFORMATIONAL = "informational"       # no target: a supporting figure

    @classmethod
    def _missing_(cls, value):
        """Summaries written before the rename say ``pending_review``: the same status.

        >>> Status("pending_review")
        <Status.WAITING_FOR_REVIEW: 'waiting_for_review'>
        """
        return cls.WAITING_FOR_REVIEW if value == "pending_review" else None


PERPLEXITY_IMPROVEMENT_PCT = 30.0
EMOTIONAL_INTELLIGENCE_IMPROVEMENT_PCT = 40.0
FORGETTING_RETENTION_PCT = 95.0
BRAND_VOICE_AVERAGE = 4.25

FORGETTING_ADVICE = ("The adapter kept less than 95% of the base model's financial knowledge. "
                     "Retrain with a lower learning rate, the conservative preset, or fewer epochs.")


def at_least(value: float | None, target: float) -> Status:
    """``met`` when the value reaches the target, ``not_met`` below it, ``not_measured`` without one.

    >>> at_least(31.2, 30.0), at_least(12.0, 30.0), at_least(None, 30.0)
    (<Status.MET: 'met'>, <Status.NOT_MET: 'not_met'>, <Status.NOT_MEASURED: 'not_measured'>)
    """
    if value is None:
        return Status.NOT_MEASURED
    return Status.MET if value >= target else Status.NOT_MET
