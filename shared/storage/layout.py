"""Where everything of a job lives in object storage: the one map both sides read.

The handler writes under a job's prefix and the control plane reads (and writes its own
control documents) there; neither spells a key by hand. The prefix is keyed by the training
job, never by the RunPod job, so every attempt (and RunPod's own re-run of one) finds the
same checkpoints::

    training-files/<file id>/dataset.<json|jsonl>   an uploaded dataset (outside any job)
    <prefix>/checkpoints/step-00000100/              adapter, optimizer, scheduler, RNG, state
    <prefix>/checkpoints/step-00000100/manifest.json written last: only a manifested one counts
    <prefix>/events/attempt-<N>/run-<seq>/<seq>.jsonl the handler's own copy of its events
    <prefix>/control/attempt.json                    the current attempt: an older one stops
    <prefix>/control/checkpoint-request.json         "checkpoint at the next step"
    <prefix>/runs/attempt-<N>.json                   what each attempt ran with
    <prefix>/adapter/                                the final adapter in PEFT format
    <prefix>/metrics.jsonl                           one line per optimizer step
    <prefix>/summary.json                            written last: its presence means done
    <prefix>/downloads/adapter.zip                   the adapter zipped for download
    <prefix>/evaluation/                             the evaluation (``EvaluationLayout``)
    <prefix>/evaluations/<run id>/                   a re-evaluation: events, control, evaluation

>>> layout = JobLayout.for_job("tj_1")
>>> layout.checkpoint(100)
'jobs/tj_1/checkpoints/step-00000100'
>>> layout.attempt_marker, layout.event_segment(2, 1, 40)
('jobs/tj_1/control/attempt.json', 'jobs/tj_1/events/attempt-2/run-000000000001/000000000040.jsonl')
>>> checkpoint_step("jobs/tj_1/checkpoints/step-00000100/manifest.json")
100
>>> dataset_key("file_1", "chat-jsonl")
'training-files/file_1/dataset.jsonl'
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from shared.errors import StorageError
from shared.storage.base import Storage, join

MANIFEST = "manifest.json"
DATASET_EXTENSIONS = {"brightrun-lora-v4": "json", "chat-jsonl": "jsonl", "prompts-jsonl": "jsonl"}
_MANIFEST_KEY = re.compile(r"(?:^|/)checkpoints/step-(\d{8})/manifest\.json$")


def dataset_key(file_id: str, dataset_format: str) -> str:
    """Where an uploaded training file is kept."""
    return join("training-files", file_id, f"dataset.{DATASET_EXTENSIONS[dataset_format]}")


def checkpoint_step(manifest_key: str) -> int | None:
    """The step of a checkpoint manifest's key, or None if the key is not one."""
    m = _MANIFEST_KEY.search(manifest_key)
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class JobLayout:
    """The keys under one job's prefix (``jobs/<job id>`` in the service; the output
    directory's root, ``""``, for the command line's local runs)."""

    prefix: str

    @classmethod
    def for_job(cls, job_id: str) -> "JobLayout":
        return cls(join("jobs", job_id))

    # ------------------------------------------------------------------ checkpoints
    @property
    def checkpoints(self) -> str:
        return join(self.prefix, "checkpoints")

    def checkpoint(self, step: int) -> str:
        return join(self.checkpoints, f"step-{step:08d}")

    # ------------------------------------------------------------------ the handler's event log
    def events(self, attempt: int) -> str:
        return join(self.prefix, "events", f"attempt-{attempt}")

    def event_run(self, attempt: int, first_seq: int) -> str:
        return join(self.events(attempt), f"run-{first_seq:012d}")

    def event_segment(self, attempt: int, run_first_seq: int, first_seq: int) -> str:
        return join(self.event_run(attempt, run_first_seq), f"{first_seq:012d}.jsonl")

    # ------------------------------------------------------------------ the control plane's word
    @property
    def attempt_marker(self) -> str:
        return join(self.prefix, "control", "attempt.json")

    @property
    def checkpoint_request(self) -> str:
        return join(self.prefix, "control", "checkpoint-request.json")

    @property
    def stop_request(self) -> str:
        """Checkpoint and stop, for money: ``{"type": "spend_cap" | "budget_exceeded", "message"}``."""
        return join(self.prefix, "control", "stop-request.json")

    def run_record(self, attempt: int) -> str:
        return join(self.prefix, "runs", f"attempt-{attempt}.json")

    # ------------------------------------------------------------------ outputs
    @property
    def adapter(self) -> str:
        return join(self.prefix, "adapter")

    @property
    def adapter_config(self) -> str:
        return join(self.adapter, "adapter_config.json")

    @property
    def metrics(self) -> str:
        return join(self.prefix, "metrics.jsonl")

    @property
    def summary(self) -> str:
        return join(self.prefix, "summary.json")

    @property
    def adapter_zip(self) -> str:
        return join(self.prefix, "downloads", "adapter.zip")

    def deployment_package(self, run_id: str) -> str:
        """The deployment package, with the examples of evaluation ``run_id``."""
        return join(self.prefix, "downloads", f"deployment-package-{run_id}.zip")

    # ------------------------------------------------------------------ the evaluation
    @property
    def evaluation(self) -> "EvaluationLayout":
        """Where this run's evaluation goes (a training run's, or a re-evaluation's)."""
        return EvaluationLayout(join(self.prefix, "evaluation"))

    def re_evaluation(self, run_id: str) -> "JobLayout":
        """A re-evaluation of this job: its own events, control documents and evaluation."""
        return JobLayout(join(self.prefix, "evaluations", run_id))


@dataclass(frozen=True)
class EvaluationLayout:
    """One evaluation's documents (``shared.evaluation.report``)::

        <prefix>/evaluation/parts/<part>.json      each finished part (a resumed run skips it)
        <prefix>/evaluation/samples/<suite>.jsonl  prompts and both models' answers
        <prefix>/evaluation/summary.json           written last: the measures
        <prefix>/evaluation/judge.json             the automatic judge's verdicts, when one ran
        <prefix>/evaluations/<run id>/evaluation/  a re-evaluation's, the same way

    >>> ev = JobLayout.for_job("tj_1").evaluation
    >>> ev.summary, ev.samples("ei")
    ('jobs/tj_1/evaluation/summary.json', 'jobs/tj_1/evaluation/samples/ei.jsonl')
    >>> JobLayout.for_job("tj_1").re_evaluation("ev_2").evaluation.part("forgetting")
    'jobs/tj_1/evaluations/ev_2/evaluation/parts/forgetting.json'
    """

    prefix: str

    def part(self, name: str) -> str:
        return join(self.prefix, "parts", f"{name}.json")

    def samples(self, suite: str) -> str:
        return join(self.prefix, "samples", f"{suite}.jsonl")

    @property
    def summary(self) -> str:
        return join(self.prefix, "summary.json")

    @property
    def judge(self) -> str:
        return join(self.prefix, "judge.json")


# ---------------------------------------------------------------------- reading checkpoints
@dataclass(frozen=True)
class Checkpoint:
    key: str
    step: int
    manifest: dict

    @property
    def manifest_key(self) -> str:
        return join(self.key, MANIFEST)


def complete_checkpoints(storage: Storage, layout: JobLayout) -> list[Checkpoint]:
    """The job's manifested checkpoints, newest first (a manifest that cannot be read does
    not count). Read-only: writing and pruning are the handler's (``handler/checkpoint.py``)."""
    found = []
    for key in storage.list(layout.checkpoints):
        step = checkpoint_step(key)
        if step is None:
            continue
        try:
            manifest = json.loads(storage.get_bytes(key))
        except (StorageError, ValueError):
            continue
        found.append(Checkpoint(key.rsplit("/", 1)[0], step, manifest))
    return sorted(found, key=lambda c: -c.step)


def find_checkpoint(storage: Storage, key: str) -> Checkpoint | None:
    """The checkpoint at ``key`` (``<prefix>/checkpoints/step-N``), if it is complete."""
    manifest_key = join(key, MANIFEST)
    step = checkpoint_step(manifest_key)
    if step is None or not storage.exists(manifest_key):
        return None
    try:
        return Checkpoint(key, step, json.loads(storage.get_bytes(manifest_key)))
    except ValueError:
        return None
