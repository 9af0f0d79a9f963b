"""The recipe's evaluating stage, and the ``evaluate`` job kind: a finished job's adapter
evaluated again (all of the suite, a larger sample, or with the customer's prompts), its
events and results under the job's ``evaluations/<run id>/``."""
from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

from handler.evaluation import generation
from handler.evaluation.suite import ACTIVITIES, SuiteRun, event_fields
from shared.errors import ConfigError, Problem
from shared.evaluation.report import EvaluationSummary
from shared.storage import join


def evaluating(recipe) -> Iterator[dict]:
    """Each part of the suite that is not already in storage, then the ``evaluation`` event."""
    recipe.control.check_current_attempt()
    yield recipe.events.make("stage", stage="evaluating")
    layout = recipe.layout.evaluation
    run = SuiteRun(job=recipe.job, storage=recipe.storage, layout=layout, model=recipe.model,
                   tokenizer=recipe.tokenizer, data=recipe.data, device=recipe.device,
                   token_budget=recipe._token_budget, should_stop=recipe.should_stop)
    for part in run.plan():
        if run.load(part):
            continue
        if recipe.should_stop():
            raise recipe._interrupt()
        recipe.control.check_current_attempt()
        try:
            yield from recipe._with_heartbeat("evaluating", ACTIVITIES[part], lambda: run.run(part))
        except generation.Stopped:
            raise recipe._interrupt() from None
    summary = run.finish()
    recipe.evaluation = event_fields(summary, layout.summary)
    yield recipe.events.make("artifact", kind="evaluation", key=layout.summary,
                             size_bytes=run.summary_bytes)
    yield recipe.events.make("evaluation", **recipe.evaluation)


def re_evaluate(recipe) -> Iterator[dict]:
    """An ``evaluate`` job: load the base model and the job's adapter, evaluate, complete."""
    ev = recipe.events
    recipe.control.check_current_attempt()
    done = recipe.layout.evaluation.summary
    if recipe.storage.exists(done):
        summary = EvaluationSummary.model_validate_json(recipe.storage.get_bytes(done))
        if summary.fingerprint == recipe.job.evaluation_fingerprint():
            yield ev.make("completed", summary={"eval": event_fields(summary, done)})
            return
    yield from recipe.load()
    yield from recipe._with_heartbeat("model_loading", "loading the adapter", lambda: load_adapter(recipe))
    yield from evaluating(recipe)
    yield ev.make("completed", summary={"eval": recipe.evaluation})


def load_adapter(recipe) -> None:
    """The trained job's final adapter (``<job prefix>/adapter``) onto the recipe's model."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file
    key = join(recipe.job_layout.adapter, "adapter_model.safetensors")
    if not recipe.storage.exists(key):
        raise ConfigError([Problem("job", f"{recipe.job.job_id} has no trained adapter to evaluate "
                                   f"(no {key})")], fix="Evaluate a completed job.")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "adapter_model.safetensors"
        path.write_bytes(recipe.storage.get_bytes(key))
        set_peft_model_state_dict(recipe.model, load_file(str(path)))
