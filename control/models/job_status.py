"""The words of the job lifecycle: a job's status and an attempt's outcome, each with its sets.

The transitions between them are ``control/services/lifecycle.py``; this module is only
the vocabulary, kept beside the tables that store it (as rq keeps ``JobStatus`` beside
``Job``). Members are strings, so they compare, serialise and bind in SQL as their values.

>>> JobStatus.COMPLETED.is_final, JobStatus.TRAINING.is_final
(True, False)
>>> "recovering" in JobStatus.WAITING_FOR_DISPATCH
True
>>> sorted(JobStatus.LOCKED)
['cancel_requested', 'cancelled', 'completed', 'failed']
>>> AttemptOutcome.STALLED in AttemptOutcome.INTERRUPTIONS
True
"""
from __future__ import annotations

from enum import StrEnum, nonmember


class JobStatus(StrEnum):
    """Where a job is: ``pending (→ awaiting_approval) → queued → provisioning → preprocessing → model_loading →
    training → evaluating → finalizing → completed``, with ``stalled`` (a silent worker),
    ``recovering`` (a lost attempt; a new one resumes from the last checkpoint),
    ``cancel_requested → cancelled`` and ``failed``."""

    PENDING = "pending"
    AWAITING_APPROVAL = "awaiting_approval"    # estimated above APPROVAL_THRESHOLD_USD: an admin decides
    QUEUED = "queued"
    PROVISIONING = "provisioning"
    PREPROCESSING = "preprocessing"
    MODEL_LOADING = "model_loading"
    TRAINING = "training"
    EVALUATING = "evaluating"
    FINALIZING = "finalizing"
    COMPLETED = "completed"
    STALLED = "stalled"
    RECOVERING = "recovering"
    CANCEL_REQUESTED = "cancel_requested"
    CANCELLED = "cancelled"
    FAILED = "failed"

    #: Ended for good: nothing runs, nothing more is billed.
    FINAL = nonmember(frozenset({COMPLETED, CANCELLED, FAILED}))
    #: Waiting for a dispatch task to claim it.
    WAITING_FOR_DISPATCH = nonmember(frozenset({QUEUED, RECOVERING}))
    #: Events may no longer change the status (a stage event of a late chunk, say).
    LOCKED = nonmember(frozenset({CANCEL_REQUESTED, CANCELLED, COMPLETED, FAILED}))
    #: A checkpoint can be asked for now.
    CHECKPOINTABLE = nonmember(frozenset({TRAINING, STALLED}))

    @property
    def is_final(self) -> bool:
        return self in JobStatus.FINAL

    @classmethod
    def active(cls) -> tuple["JobStatus", ...]:
        """Started and not ended: a worker runs it, or is about to."""
        return tuple(s for s in cls if s not in cls.FINAL and s not in (cls.PENDING, cls.AWAITING_APPROVAL))

    @classmethod
    def deletable(cls) -> frozenset[str]:
        """Nothing runs, so the job and everything it stored can go."""
        return cls.FINAL | {cls.PENDING, cls.AWAITING_APPROVAL}


class AttemptOutcome(StrEnum):
    """How one dispatch of a job to the GPU endpoint ended."""

    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    LOST = "lost"                # the worker died or RunPod ended it for a reason not the user's
    INTERRUPTED = "interrupted"  # the worker was told to stop (SIGTERM) and checkpointed first
    STALLED = "stalled"          # silent past twice the stall limit: cancelled and replaced
    SUPERSEDED = "superseded"    # a newer attempt carries the job
    REFUSED = "refused"          # the endpoint did not take the job: no worker ran it

    #: The worker was lost: the job recovers with a new attempt, and the cost is counted.
    INTERRUPTIONS = nonmember(frozenset({LOST, INTERRUPTED, STALLED}))
