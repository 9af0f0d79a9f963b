"""The training recipe: validate -> set up data, model, optimizer, scheduler -> train ->
checkpoint -> evaluate -> save. It is a generator of the events of ``shared.events``; the
command line and the RunPod handler both drive it.

Everything the recipe writes goes through the storage interface under the job's prefix:

    <prefix>/checkpoints/step-00000100/   adapter weights, optimizer, scheduler, RNG, state
    <prefix>/adapter/                     the final adapter in PEFT format, with tokenizer
    <prefix>/metrics.jsonl                one line per optimizer step
    <prefix>/summary.json                 written last: its presence means the run is done

On start the recipe resumes from the newest complete checkpoint whose run matches this
job input, so a re-run of the same job after a lost worker continues where it stopped,
and ends with the same adapter as an uninterrupted run.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from handler import batching, checkpoint, models
from handler.heartbeat import HEARTBEAT_SECONDS, beating
from handler.tokenization import EncodedSplit, encode_conversations
from shared.dataset import min_quality, parse_bytes, split_conversations
from shared.dataset.folding import to_sequences
from shared.errors import (CheckpointMismatch, ConfigError, DatasetError, Interrupted, Problem,
                           StorageError, Superseded, TimeLimitReached)
from shared.events import EventStream
from shared.job_input import JobInput
from shared.storage import Storage, join

FEW_STEPS = 10
SEQ_BLOCK = 1_000_000   # events one run of an attempt may emit (a 24 h run at 1 step/s: 86,400)
# How often training looks at <prefix>/control/ (checkpoint requests, newer attempts).
CONTROL_POLL_S = float(os.environ.get("CONTROL_POLL_SECONDS", 5))
TIME_LIMIT_MARGIN_S = 60.0   # stop this long (plus 3 steps) before the time limit, to checkpoint


@dataclass
class Evaluation:
    loss: float
    tokens: int

    @property
    def perplexity(self) -> float:
        return math.exp(min(self.loss, 50.0))

    def to_dict(self) -> dict:
        return {"loss": round(self.loss, 6), "perplexity": round(self.perplexity, 4)}


def improvement_pct(base: Evaluation, trained: Evaluation) -> float:
    """How much lower the adapter's held-out perplexity is than the base model's, in %."""
    return round(100.0 * (base.perplexity - trained.perplexity) / base.perplexity, 2)


class Recipe:
    def __init__(self, job: JobInput, storage: Storage, *,
                 should_stop: Callable[[], bool] = lambda: False, heartbeat_s: float = HEARTBEAT_SECONDS):
        self.job = job
        self.heartbeat_s = heartbeat_s
        self.hp = job.hyperparameters
        self.storage = storage
        self.prefix = job.checkpoint.prefix
        self.should_stop = should_stop
        self.events = EventStream(job.job_id, job.attempt, start_seq=self._run_seq_base())
        self.device = models.device()
        # Training state: everything here is saved in, and restored from, a checkpoint.
        self.step = 0
        self.train_tokens = 0
        self.padded_tokens = 0
        self.elapsed = 0.0
        self.resumes = 0
        self.metrics: list[dict] = []
        self.last_checkpoint_step = 0
        self.started = time.monotonic()
        self.last_poll = 0.0

    def _run_seq_base(self) -> int:
        """Events are stored idempotently by (job, attempt, seq), and RunPod may re-run an
        attempt on its own: each run of an attempt numbers its events from a block of its
        own, counted in storage, so a re-run's events never collide with the last run's."""
        key = join(self.prefix, "runs", f"attempt-{self.job.attempt}.json")
        runs = json.loads(self.storage.get_bytes(key))["runs"] if self.storage.exists(key) else 0
        self.storage.put_bytes(key, json.dumps({"runs": runs + 1}).encode())
        return runs * SEQ_BLOCK

    # ---------------------------------------------------------------- the whole run
    def run(self) -> Iterator[dict]:
        ev = self.events
        self._check_current_attempt()
        done = self._finished_summary()
        if done is not None:
            yield ev.make("completed", summary=done)
            return

        yield ev.make("stage", stage="preprocessing")
        source = models.resolve(self.job.base_model)
        self.model_location = yield from self._while("preprocessing", "fetching the base model",
                                                     lambda: models.materialize(source))
        self.tokenizer = models.load_tokenizer(self.model_location, self.job.base_model)
        yield from self._prepare_data()

        yield ev.make("stage", stage="model_loading")
        yield from self._while("model_loading", "loading the base model", self._setup_model)
        resumed_from = yield from self._while("model_loading", "loading the checkpoint", self._resume)
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

        self._check_current_attempt()
        yield ev.make("stage", stage="evaluating")
        base, trained = yield from self._while("evaluating", "scoring the held-out conversations",
                                               self._evaluate)
        scored = self.val if self.val.sequences else self.train
        self.evaluation = {
            "split": "validation" if self.val.sequences else "training",
            "conversations": len({e.conversation_id for e in scored.sequences}),
            "targets": scored.targets, "tokens": base.tokens,
            "base": base.to_dict(), "trained": trained.to_dict(),
            "improvement_pct": improvement_pct(base, trained)}
        yield ev.make("evaluation", **self.evaluation)

        self._check_current_attempt()
        yield ev.make("stage", stage="finalizing")
        yield from self._save_outputs()
        yield ev.make("completed", summary=self.summary)

    def _while(self, stage: str, activity: str, fn):
        """``fn()``'s value, with a heartbeat event every ``heartbeat_s`` while it runs."""
        return (yield from beating(fn, lambda seconds: self.events.make(
            "heartbeat", stage=stage, activity=activity, elapsed_seconds=round(seconds, 1)),
            self.heartbeat_s))

    # ---------------------------------------------------------------- data
    def _prepare_data(self) -> Iterator[dict]:
        ref = self.job.dataset
        try:
            raw = self.storage.get_bytes(ref.key)
        except StorageError as exc:
            raise DatasetError([Problem("dataset", f"could not be read from storage: {exc}",
                                        "key")]) from exc
        if hashlib.sha256(raw).hexdigest() != ref.sha256:
            raise DatasetError([Problem("dataset", f"{ref.key} does not match its sha256: "
                                        "the file changed after it was recorded", "sha256")])
        dataset = min_quality(parse_bytes(raw, name=ref.key, fmt=ref.format),
                              self.job.data.min_quality_score)
        if not dataset.conversations:
            raise DatasetError([Problem("dataset", "no training pair is left after the minimum "
                                        f"quality filter ({self.job.data.min_quality_score})")])
        self.dataset = dataset
        train_convs, val_convs = split_conversations(
            dataset.conversations, self.job.validation.fraction, self.job.validation.seed)
        sequences_of = lambda conv: to_sequences([conv], fold=self.job.data.fold)  # noqa: E731
        max_len = self.hp.max_seq_length
        self.train = encode_conversations(self.tokenizer, train_convs, sequences_of, max_len)
        self.val = encode_conversations(self.tokenizer, val_convs, sequences_of, max_len)
        for warning in dataset.warnings:
            yield self.events.make("warning", code="dataset_metadata", message=warning)
        dropped = self.train.dropped_too_long + self.val.dropped_too_long
        if dropped:
            yield self.events.make("warning", code="too_long", message=(
                f"{len(dropped)} training pairs end beyond max_seq_length={max_len} tokens and "
                f"are not trained or scored (first: {', '.join(dropped[:5])})"))
        unfolded = self.train.unfolded_conversations + self.val.unfolded_conversations
        if unfolded:
            yield self.events.make("warning", code="not_folded", message=(
                f"{len(unfolded)} conversations could not be folded exactly with this "
                f"tokenizer and are trained pair by pair (first: {', '.join(unfolded[:5])})"))
        if not self.train.sequences:
            raise DatasetError([Problem("dataset", "no training pair fits in max_seq_length="
                                        f"{max_len} tokens")])
        if self.job.validation.fraction > 0 and not self.val.sequences:
            raise DatasetError([Problem("dataset", "no held-out pair fits in max_seq_length="
                                        f"{max_len} tokens")])

    def data_summary(self) -> dict:
        tr, va = self.train, self.val
        unfolded = tr.tokens_unfolded + va.tokens_unfolded
        folded = tr.tokens + va.tokens
        return {
            "format": self.dataset.format,
            "conversations": len(self.dataset.conversations),
            "train_conversations": len({e.conversation_id for e in tr.sequences}),
            "validation_conversations": len({e.conversation_id for e in va.sequences}),
            "pairs": self.dataset.pairs_total,
            "skipped_null_targets": self.dataset.skipped_null_targets,
            "skipped_low_quality": self.dataset.skipped_low_quality,
            "train_pairs": tr.targets, "validation_pairs": va.targets,
            "dropped_too_long": len(tr.dropped_too_long) + len(va.dropped_too_long),
            "folding": {
                "enabled": self.job.data.fold,
                "sequences": len(tr.sequences) + len(va.sequences),
                "folded_pairs": sum(e.n_targets for e in tr.sequences + va.sequences if e.n_targets > 1),
                "tokens_unfolded": unfolded, "tokens_folded": folded,
                "tokens_saved_pct": round(100 * (1 - folded / unfolded), 1) if unfolded else 0.0,
                "unfolded_conversations": len(tr.unfolded_conversations) + len(va.unfolded_conversations),
            },
            "train_tokens_per_epoch": tr.tokens,
            "train_target_tokens_per_epoch": tr.target_tokens,
        }

    # ---------------------------------------------------------------- model
    def _setup_model(self) -> None:
        random.seed(self.job.seed)
        torch.manual_seed(self.job.seed)
        base = models.load_model(self.model_location, self.job.base_model, self.job.method)
        self.model = models.attach_lora(base, self.hp, self.job.seed)
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
        for ckpt in checkpoint.candidates(self.storage, self.prefix):
            meta = ckpt.manifest.get("meta", {})
            if meta.get("fingerprint") != fingerprint:
                theirs = JobInput.parse(meta["job"]) if "job" in meta else None
                diff = "; ".join(theirs.differences(self.job)) if theirs else "unknown settings"
                raise CheckpointMismatch(
                    f"{self.prefix or 'the output directory'} holds checkpoints of a different "
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
        ckpt = checkpoint.find(self.storage, key)
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
            key = checkpoint.save(self.storage, self.prefix, self.step, files, meta)
        self._write_metrics()
        checkpoint.prune(self.storage, self.prefix, keep=2)
        self.last_checkpoint_step = self.step
        return self.events.make("checkpoint", step=self.step, key=key, reason=reason)

    def _write_metrics(self) -> None:
        body = "".join(json.dumps(m) + "\n" for m in self.metrics)
        self.storage.put_bytes(join(self.prefix, "metrics.jsonl"), body.encode())

    # ---------------------------------------------------------------- training
    def _train(self) -> Iterator[dict]:
        every = self.job.checkpoint.every_steps
        budget = self.hp.batch_size * self.hp.max_seq_length
        lengths = [len(e) for e in self.train.sequences]
        run_start, steps_this_run = time.monotonic(), 0
        while self.step < self.total_steps:
            if self.should_stop():
                if self.step > self.last_checkpoint_step and hasattr(self, "scheduler"):
                    yield self._save_checkpoint("signal")      # the control plane sees what is safe
                raise self._interrupt()
            if time.monotonic() - self.last_poll >= CONTROL_POLL_S:
                self.last_poll = time.monotonic()
                if self._poll_control():
                    yield (self._save_checkpoint("requested") if self.step > self.last_checkpoint_step
                           else self._checkpoint_event(self.last_checkpoint_step, "requested"))
            if self._near_time_limit(steps_this_run and (time.monotonic() - run_start) / steps_this_run):
                if self.step > self.last_checkpoint_step:
                    yield self._save_checkpoint("time_limit")
                raise TimeLimitReached(self.step, self.job.time_limit_seconds)
            _, indices = self.plan[self.step]
            t0 = time.monotonic()
            lr = self.optimizer.param_groups[0]["lr"]     # the rate this step uses
            loss, grad_norm, real, padded = self._train_step(
                batching.micro_batches(indices, lengths, budget))
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
            self.metrics.append(record)
            yield self.events.make("metrics", **record)
            if self.step % every == 0 and self.step < self.total_steps:
                yield self._save_checkpoint("interval")
        if self.last_checkpoint_step != self.step:
            # Evaluation and saving can then restart without retraining.
            yield self._save_checkpoint("final")

    # ---------------------------------------------------------------- the control plane's word
    def _control_key(self, name: str) -> str:
        return join(self.prefix, "control", name)

    def _read_control(self, name: str) -> dict | None:
        """A control document, or None when there is none (or storage does not answer now:
        the next poll asks again)."""
        store = getattr(self.storage, "inner", self.storage)      # no retrying for a poll
        try:
            return json.loads(store.get_bytes(self._control_key(name)))
        except (StorageError, ValueError):
            return None

    def _check_current_attempt(self) -> None:
        """Stop if the control plane has moved on to a newer attempt (never two writers)."""
        current = (self._read_control("attempt.json") or {}).get("attempt", 0)
        if current > self.job.attempt:
            raise Superseded(self.job.attempt, current)

    def _poll_control(self) -> bool:
        """A newer attempt stops this one; a checkpoint request is taken (and cleared)."""
        self._check_current_attempt()
        if self._read_control("checkpoint-request.json") is None:
            return False
        self.storage.delete(self._control_key("checkpoint-request.json"))
        return True

    def _checkpoint_event(self, step: int, reason: str) -> dict:
        return self.events.make("checkpoint", step=step, key=checkpoint.checkpoint_key(self.prefix, step),
                                reason=reason)

    def _near_time_limit(self, per_step: float) -> bool:
        limit = self.job.time_limit_seconds
        if not limit:
            return False
        return time.monotonic() - self.started + TIME_LIMIT_MARGIN_S + 3 * (per_step or 0) >= limit

    def _interrupt(self) -> Interrupted:
        key = checkpoint.checkpoint_key(self.prefix, self.last_checkpoint_step) if self.last_checkpoint_step else None
        return Interrupted(self.step, key)

    def _train_step(self, micro: list[list[int]]) -> tuple[float, float, int, int]:
        self.model.train()
        seqs = self.train.sequences
        n_target_tokens = sum(seqs[i].target_tokens for batch in micro for i in batch)
        loss_sum, real, padded = 0.0, 0, 0
        for batch in micro:
            ids, attn, mask = _collate([seqs[i] for i in batch], self.tokenizer.pad_token_id,
                                       self.device)
            losses = token_losses(self.model, ids, attn, mask)
            (losses.sum() / n_target_tokens).backward()
            loss_sum += losses.detach().sum().item()
            real += int(attn.sum())
            padded += attn.numel()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.hp.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss_sum / n_target_tokens, float(grad_norm), real, padded

    # ---------------------------------------------------------------- evaluation
    @torch.no_grad()
    def _score(self, split: EncodedSplit) -> Evaluation:
        self.model.eval()
        seqs = split.sequences
        budget = self.hp.batch_size * self.hp.max_seq_length
        total, count = 0.0, 0
        for batch in batching.micro_batches(list(range(len(seqs))), [len(s) for s in seqs], budget):
            ids, attn, mask = _collate([seqs[i] for i in batch], self.tokenizer.pad_token_id,
                                       self.device)
            losses = token_losses(self.model, ids, attn, mask)
            total += losses.double().sum().item()
            count += losses.numel()
        return Evaluation(total / max(count, 1), count)

    def _evaluate(self) -> tuple[Evaluation, Evaluation]:
        split = self.val if self.val.sequences else self.train
        with self.model.disable_adapter():
            base = self._score(split)
        return base, self._score(split)

    # ---------------------------------------------------------------- outputs
    def _save_outputs(self) -> Iterator[dict]:
        adapter_prefix = join(self.prefix, "adapter")
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "adapter"
            self.model.save_pretrained(str(out))
            self.tokenizer.save_pretrained(str(out))
            size = 0
            for path in sorted(out.rglob("*")):
                if path.is_file():
                    size += self.storage.put_file(join(adapter_prefix, path.relative_to(out).as_posix()), path)
        yield self.events.make("artifact", kind="adapter", key=adapter_prefix, size_bytes=size)
        self._write_metrics()
        yield self.events.make("artifact", kind="metrics", key=join(self.prefix, "metrics.jsonl"),
                               size_bytes=sum(len(json.dumps(m)) + 1 for m in self.metrics))
        self.summary = {
            "job_id": self.job.job_id, "fingerprint": self.job.fingerprint(),
            "base_model": self.job.base_model, "method": self.job.method, "preset": self.job.preset,
            "steps": self.step, "total_steps": self.total_steps, "epochs": self.hp.num_epochs,
            "train_tokens": self.train_tokens,
            "padding_fraction": round(1 - self.train_tokens / self.padded_tokens, 4) if self.padded_tokens else 0.0,
            "tokens_per_second": round(self.train_tokens / self.elapsed, 1) if self.elapsed else None,
            "train_seconds": round(self.elapsed, 1), "resumes": self.resumes,
            "final_loss": self.metrics[-1]["loss"] if self.metrics else None,
            "eval": self.evaluation, "data": self.data_summary(),
            "hyperparameters": self.hp.model_dump(mode="json"),
            "adapter_key": adapter_prefix, "adapter_bytes": size,
        }
        body = json.dumps(self.summary, indent=2).encode()
        self.storage.put_bytes(join(self.prefix, "summary.json"), body)
        yield self.events.make("artifact", kind="summary", key=join(self.prefix, "summary.json"),
                               size_bytes=len(body))

    def _finished_summary(self) -> dict | None:
        key = join(self.prefix, "summary.json")
        if not self.storage.exists(key):
            return None
        summary = json.loads(self.storage.get_bytes(key))
        if summary.get("fingerprint") != self.job.fingerprint():
            raise CheckpointMismatch(
                f"{self.prefix or 'the output directory'} holds the finished result of a "
                "different run", fix="Use a new output directory.")
        return summary


# -------------------------------------------------------------------- pure helpers
def token_losses(model, input_ids, attention_mask, trained_mask):
    """Cross-entropy of each trained token, computing logits only where loss is taken."""
    lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    predict = trained_mask[:, 1:]
    targets = input_ids[:, 1:][predict]
    backbone = getattr(lm, lm.base_model_prefix, None)
    plain_head = not any(getattr(lm.config, k, None) for k in ("final_logit_softcapping", "logit_scale"))
    if backbone is not None and plain_head:
        hidden = backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        logits = lm.get_output_embeddings()(hidden[:, :-1][predict])
    else:
        logits = lm(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1][predict]
    return F.cross_entropy(logits.float(), targets, reduction="none")


def _collate(encoded, pad_id: int, device):
    width = max(len(e) for e in encoded)
    ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(encoded), width), dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.bool)
    for row, e in enumerate(encoded):
        n = len(e)
        ids[row, :n] = torch.tensor(e.input_ids)
        attn[row, :n] = 1
        mask[row, :n] = torch.tensor(e.trained)
    return ids.to(device), attn.to(device), mask.to(device)


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
