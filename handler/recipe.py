"""The training recipe: validate -> set up data, model, optimizer, scheduler -> train ->
checkpoint -> evaluate -> save. It is a generator of the events of ``shared.events``; the
command line and the RunPod handler both drive it.

Everything the recipe writes goes through the storage interface under the job's prefix,
at the keys of ``shared.storage.layout``: checkpoints (``handler/checkpoint.py``), the run
record of each attempt, the adapter, metrics and summary (``handler/outputs.py``). The
data is prepared by ``handler/training_data.py``, the base model comes from
``handler/base_models.py``, the control plane's word and the time limit are read by
``handler/control_signals.py``, and the evaluating stage is ``handler/evaluation/``'s (a
``SuiteRun`` of parts, each stored as it finishes).

On start the recipe resumes from the newest complete checkpoint whose run matches this
job input, so a re-run of the same job after a lost worker continues where it stopped,
and ends with the same adapter as an uninterrupted run.
"""
from __future__ import annotations

import json
import math
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from handler import base_models, batching, checkpoint, outputs, packing, training_data
from handler.evaluation import perplexity, stage
from handler.control_signals import ControlSignals, stop_for
from handler.heartbeat import beating
from handler.training_step import train_step
from handler.settings import HandlerSettings
from shared.errors import CheckpointMismatch, ConfigError, Interrupted, Problem, TimeLimitReached
from shared.events import EventStream
from shared.job_input import JobInput
from shared.storage import Storage
from shared.storage.layout import JobLayout, complete_checkpoints, find_checkpoint

FEW_STEPS = 10
SEQ_BLOCK = 1_000_000   # events one run of an attempt may emit (a 24 h run at 1 step/s: 86,400)


class Recipe:
    """One run of one attempt of ``job``, writing to ``storage``. ``settings`` are the
    worker's (``HandlerSettings.from_env()``, read once when it starts), the defaults
    without; ``should_stop`` is asked before each step (SIGTERM, Ctrl-C)."""

    def __init__(self, job: JobInput, storage: Storage, *, settings: HandlerSettings | None = None,
                 should_stop: Callable[[], bool] = lambda: False):
        self.job = job
        self.settings = settings if settings is not None else HandlerSettings()
        self.hp = job.hyperparameters
        self.storage = storage
        # The job's own keys (its checkpoints and adapter); a re-evaluation writes its events,
        # control documents and results under the job's evaluations/<run id>/.
        self.job_layout = JobLayout(job.checkpoint.prefix)
        self.layout = (self.job_layout.re_evaluation(job.evaluation.run_id) if job.kind == "evaluate"
                       else self.job_layout)
        self.should_stop = should_stop
        self.events = EventStream(job.job_id, job.attempt, start_seq=self._run_seq_base())
        self.device = base_models.device()
        # Training state: everything here is saved in, and restored from, a checkpoint.
        self.step = 0
        self.train_tokens = 0
        self.padded_tokens = 0
        self.elapsed = 0.0
        self.resumes = 0
        self.metrics: list[dict] = []
        self.last_checkpoint_step = 0
        self.control = ControlSignals(storage, self.layout, job.attempt,
                                      poll_seconds=self.settings.control_poll_seconds,
                                      time_limit_seconds=job.time_limit_seconds)

    def _run_seq_base(self) -> int:
        """Events are stored idempotently by (job, attempt, seq), and RunPod may re-run an
        attempt on its own: each run of an attempt numbers its events from a block of its
        own, counted in storage, so a re-run's events never collide with the last run's."""
        key = self.layout.run_record(self.job.attempt)
        runs = json.loads(self.storage.get_bytes(key))["runs"] if self.storage.exists(key) else 0
        self.storage.put_bytes(key, json.dumps({"runs": runs + 1}).encode())
        return runs * SEQ_BLOCK

    # ---------------------------------------------------------------- the whole run
    def run(self) -> Iterator[dict]:
        ev = self.events
        if self.job.kind == "evaluate":
            yield from stage.re_evaluate(self)
            return
        self.control.check_current_attempt()
        done = outputs.finished_summary(self.storage, self.layout, self.job)
        if done is not None:
            yield ev.make("completed", summary=done)
            return

        yield from self.load()
        resumed_from = yield from self._with_heartbeat("model_loading", "loading the checkpoint",
                                                       self._resume)
        full_plan = batching.plan([e.n_targets for e in self.train.sequences],
                                  self.hp.targets_per_step, self.job.seed, self.hp.num_epochs)
        self.plan = full_plan[:self.hp.max_steps] if self.hp.max_steps else full_plan
        self.epoch_progress = batching.epoch_progress(full_plan)
        self.total_steps = len(self.plan)
        self._setup_scheduler(resumed_from)
        if self.total_steps < FEW_STEPS and not resumed_from and not self.hp.max_steps:
            yield ev.make("warning", code="few_steps", message=(
                f"the training split gives only {self.total_steps} optimizer steps at "
                f"{self.hp.targets_per_step} training pairs a step "
                f"({self.hp.batch_size} x {self.hp.gradient_accumulation_steps}): the adapter may "
                "learn little. Use more data, more epochs, or a smaller batch_size."))

        message = (f"resumed from step {resumed_from.step}" if resumed_from else
                   f"started from the adapter of {self.job.checkpoint.init_from}"
                   if self.job.checkpoint.init_from else None)
        yield ev.make("stage", stage="training", message=message,
                      resumed_from_step=resumed_from.step if resumed_from else None)
        yield from self._train()

        yield from stage.evaluating(self)

        self.control.check_current_attempt()
        yield ev.make("stage", stage="finalizing")
        yield from self._save_outputs()
        yield ev.make("completed", summary=self.summary)

    def load(self) -> Iterator[dict]:
        """Preprocessing (the base model fetched, its tokenizer, the data prepared), then
        model loading (the base with LoRA attached); training and re-evaluation both start so."""
        yield self.events.make("stage", stage="preprocessing")
        source = base_models.resolve(self.job.base_model)
        self.model_location = yield from self._with_heartbeat(
            "preprocessing", "fetching the base model",
            lambda: base_models.materialize(source, self.settings.model_cache))
        self.tokenizer = base_models.load_tokenizer(self.model_location, self.job.base_model,
                                                    self.settings.hf_token)
        yield from self._prepare_data()
        yield self.events.make("stage", stage="model_loading")
        yield from self._with_heartbeat("model_loading", "loading the base model", self._setup_model)

    def _with_heartbeat(self, stage: str, activity: str, fn):
        """``fn()``'s value, with a heartbeat event every ``heartbeat_seconds`` while it runs."""
        return (yield from beating(fn, lambda seconds: self.events.make(
            "heartbeat", stage=stage, activity=activity, elapsed_seconds=round(seconds, 1)),
            self.settings.heartbeat_seconds))

    @property
    def _validation_every(self) -> int:
        """Steps between two validation-loss points: the setting, or ten points over the run."""
        return self.job.evaluation.every_steps or max(1, math.ceil(self.total_steps / 10))

    @property
    def _token_budget(self) -> int:
        """Real tokens in one micro-batch, which is one packed row (no padding)."""
        return batching.token_budget(self.hp)

    # ---------------------------------------------------------------- data
    def _prepare_data(self) -> Iterator[dict]:
        self.data = training_data.prepare(self.job, self.storage, self.tokenizer,
                                          max_bytes=self.settings.dataset_max_bytes)
        self.train, self.val = self.data.train, self.data.val
        for code, message in self.data.warnings():
            yield self.events.make("warning", code=code, message=message)
        self.data.check_fits()

    # ---------------------------------------------------------------- model
    def _setup_model(self) -> None:
        random.seed(self.job.seed)
        torch.manual_seed(self.job.seed)
        base = base_models.load_model(self.model_location, self.job.base_model, self.job.method,
                                      self.settings.hf_token)
        self.model = base_models.attach_lora(base, self.hp, self.job.seed)
        self.attention = packing.use_packed_attention(self.model, self.device)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=self.hp.learning_rate,
                                           weight_decay=self.hp.weight_decay)

    def _setup_scheduler(self, resumed_from) -> None:
        from transformers import get_scheduler
        warmup = math.ceil(self.total_steps * self.hp.warmup_ratio)
        self.scheduler = get_scheduler(self.hp.lr_scheduler, self.optimizer,
                                       num_warmup_steps=warmup,
                                       num_training_steps=self.total_steps)
        if resumed_from is not None:
            # Order matters: building a scheduler rewrites the optimizer's learning rate,
            # so the optimizer's saved state goes in after it, then the scheduler's.
            self.optimizer.load_state_dict(self._resume_state["optimizer"])
            self.scheduler.load_state_dict(self._resume_state["scheduler"])
            _set_rng_state(self._resume_state["rng"])

    # ---------------------------------------------------------------- checkpoints
    def _resume(self):
        """Load the newest complete checkpoint of this run, if there is one."""
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file
        fingerprint = self.job.fingerprint()
        for ckpt in complete_checkpoints(self.storage, self.layout):
            meta = ckpt.manifest.get("meta", {})
            if meta.get("fingerprint") != fingerprint:
                theirs = JobInput.parse(meta["job"]) if "job" in meta else None
                diff = "; ".join(theirs.differences(self.job)) if theirs else "unknown settings"
                raise CheckpointMismatch(
                    f"{self.layout.prefix or 'the output directory'} holds checkpoints of a different "
                    f"run ({diff})",
                    fix="Use a new output directory, or run with the original settings.")
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    files = checkpoint.download(self.storage, ckpt, Path(tmp))
                except checkpoint.DamagedCheckpoint:
                    continue  # damaged: fall back to the one before (storage down: raised)
                set_peft_model_state_dict(self.model, load_file(str(files["adapter_model.safetensors"])))
                self._resume_state = torch.load(files["state.pt"], weights_only=False)
                self._resume_state["optimizer"] = torch.load(files["optimizer.pt"], weights_only=True)
                state = json.loads(files["trainer_state.json"].read_text())
            self.step = state["step"]
            self.train_tokens = state["train_tokens"]
            self.padded_tokens = state["padded_tokens"]
            self.elapsed = state["elapsed_seconds"]
            self.metrics = state["metrics"]
            self.resumes = state["resumes"] + 1
            self.last_checkpoint_step = self.step
            return ckpt
        if self.job.checkpoint.init_from:
            self._start_from(self.job.checkpoint.init_from)
        return None

    def _start_from(self, key: str) -> None:
        """A new job continuing another's training: its adapter weights from that job's
        checkpoint; the optimizer, schedule and step count start afresh for this job's plan."""
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file
        ckpt = find_checkpoint(self.storage, key)
        if ckpt is None:
            raise ConfigError([Problem("checkpoint.init_from", f"no complete checkpoint at {key!r}")])
        with tempfile.TemporaryDirectory() as tmp:
            files = checkpoint.download(self.storage, ckpt, Path(tmp))
            try:
                set_peft_model_state_dict(self.model, load_file(str(files["adapter_model.safetensors"])))
            except RuntimeError as exc:
                raise ConfigError([Problem("checkpoint.init_from", (
                    f"the adapter in {key} does not fit this job's settings (base model, method, "
                    f"lora_r and target modules must match): {str(exc)[:300]}"))]) from None

    def _save_checkpoint(self, reason: str) -> dict:
        from peft import get_peft_model_state_dict
        from safetensors.torch import save_file
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            weights = {k: v.detach().contiguous().cpu()
                       for k, v in get_peft_model_state_dict(self.model).items()}
            save_file(weights, str(d / "adapter_model.safetensors"))
            torch.save(self.optimizer.state_dict(), d / "optimizer.pt")
            torch.save({"scheduler": self.scheduler.state_dict(), "rng": _rng_state()}, d / "state.pt")
            (d / "trainer_state.json").write_text(json.dumps({
                "step": self.step, "total_steps": self.total_steps,
                "train_tokens": self.train_tokens, "padded_tokens": self.padded_tokens,
                "elapsed_seconds": self.elapsed, "resumes": self.resumes, "metrics": self.metrics}))
            files = {p.name: p for p in d.iterdir()}
            meta = {"fingerprint": self.job.fingerprint(), "job": self.job.model_dump(mode="json"),
                    "reason": reason}
            key = checkpoint.save(self.storage, self.layout, self.step, files, meta)
        outputs.write_metrics(self.storage, self.layout, self.metrics)
        checkpoint.prune(self.storage, self.layout, keep=2)
        self.last_checkpoint_step = self.step
        return self.events.make("checkpoint", step=self.step, key=key, reason=reason)

    # ---------------------------------------------------------------- training
    def _train(self) -> Iterator[dict]:
        every = self.job.checkpoint.every_steps
        lengths = [len(e) for e in self.train.sequences]
        run_start, steps_this_run = time.monotonic(), 0
        while self.step < self.total_steps:
            if self.should_stop():
                if self.step > self.last_checkpoint_step and hasattr(self, "scheduler"):
                    yield self._save_checkpoint("signal")      # the control plane sees what is safe
                raise self._interrupt()
            if self.control.checkpoint_requested():
                yield (self._save_checkpoint("requested") if self.step > self.last_checkpoint_step
                       else self._checkpoint_event(self.last_checkpoint_step, "requested"))
            if self.control.stop:                 # for money: the budget or the job's spend cap
                if self.step > self.last_checkpoint_step:
                    yield self._save_checkpoint("stop")
                raise stop_for(self.control.stop, self.last_checkpoint_step)
            per_step = steps_this_run and (time.monotonic() - run_start) / steps_this_run
            if self.control.near_time_limit(per_step):
                if self.step > self.last_checkpoint_step:
                    yield self._save_checkpoint("time_limit")
                raise TimeLimitReached(self.step, self.job.time_limit_seconds)
            _, indices = self.plan[self.step]
            t0 = time.monotonic()
            lr = self.optimizer.param_groups[0]["lr"]     # the rate this step uses
            loss, grad_norm, real, padded = self._train_step(
                batching.micro_batches(indices, lengths, self._token_budget))
            dt = time.monotonic() - t0
            self.step += 1
            steps_this_run += 1
            self.elapsed += dt
            self.train_tokens += real
            self.padded_tokens += padded
            per_step = (time.monotonic() - run_start) / steps_this_run
            record = {
                "step": self.step, "total_steps": self.total_steps,
                "epoch": self.epoch_progress[self.step - 1],
                "loss": round(loss, 6), "lr": lr,
                "grad_norm": round(grad_norm, 6), "tokens_per_second": round(real / dt, 1),
                "elapsed_seconds": round(self.elapsed, 2),
                "eta_seconds": round(per_step * (self.total_steps - self.step), 1)}
            if self.device.type == "cuda":
                record["gpu_memory_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
            if self.val.sequences and (self.step % self._validation_every == 0 or self.step == self.total_steps):
                val = perplexity.score(self.model, self.val, self.device, self._token_budget,
                                       limit=self.job.evaluation.validation_sample)
                record["val_loss"], record["val_perplexity"] = round(val.loss, 6), round(val.perplexity, 4)
            self.metrics.append(record)
            yield self.events.make("metrics", **record)
            if self.step % every == 0 and self.step < self.total_steps:
                yield self._save_checkpoint("interval")
        if self.last_checkpoint_step != self.step:
            # Evaluation and saving can then restart without retraining.
            yield self._save_checkpoint("final")

    def _checkpoint_event(self, step: int, reason: str) -> dict:
        return self.events.make("checkpoint", step=step, key=self.layout.checkpoint(step), reason=reason)

    def _interrupt(self) -> Interrupted:
        key = self.layout.checkpoint(self.last_checkpoint_step) if self.last_checkpoint_step else None
        return Interrupted(self.step, key)

    def _train_step(self, micro: list[list[int]]) -> tuple[float, float, int, int]:
        done = train_step(self.model, self.params, self.optimizer, self.scheduler,
                          self.train.sequences, micro, self.device, self.hp.max_grad_norm)
        return done.loss, done.grad_norm, done.real_tokens, done.row_tokens

    # ---------------------------------------------------------------- outputs
    def _save_outputs(self) -> Iterator[dict]:
        size = outputs.save_adapter(self.storage, self.layout, self.model, self.tokenizer)
        yield self.events.make("artifact", kind="adapter", key=self.layout.adapter, size_bytes=size)
        yield self.events.make("artifact", kind="metrics", key=self.layout.metrics,
                               size_bytes=outputs.write_metrics(self.storage, self.layout, self.metrics))
        self.summary = {
            "job_id": self.job.job_id, "fingerprint": self.job.fingerprint(),
            "base_model": self.job.base_model, "method": self.job.method, "preset": self.job.preset,
            "steps": self.step, "total_steps": self.total_steps, "epochs": self.hp.num_epochs,
            "train_tokens": self.train_tokens,
            "padding_fraction": round(1 - self.train_tokens / self.padded_tokens, 4) if self.padded_tokens else 0.0,
            "tokens_per_second": round(self.train_tokens / self.elapsed, 1) if self.elapsed else None,
            "train_seconds": round(self.elapsed, 1), "resumes": self.resumes,
            "final_loss": self.metrics[-1]["loss"] if self.metrics else None,
            "eval": self.evaluation, "data": self.data.summary(),
            "hyperparameters": self.hp.model_dump(mode="json"), "software": outputs.software(),
            "adapter_key": self.layout.adapter, "adapter_bytes": size,
        }
        yield self.events.make("artifact", kind="summary", key=self.layout.summary,
                               size_bytes=outputs.write_summary(self.storage, self.layout, self.summary))


# -------------------------------------------------------------------- RNG state, in each checkpoint
def _rng_state() -> dict:
    state = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
