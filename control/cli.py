"""The ``pipeline`` command line.

    pipeline validate FILE [--json]            statistics, or every error with its place
    pipeline convert FILE --to chat-jsonl --out OUT
    pipeline train FILE --out DIR [options]    train locally, then evaluate; run again to resume
    pipeline evaluate DIR [options]            evaluate a finished local run again
    pipeline up | serve | worker | endpoint    the service (see control/service_cli.py)
    pipeline users create | tokens create | db upgrade

Exit codes: 0 success, 1 platform or internal error, 2 bad input or settings,
130 interrupted (a checkpoint was saved; run the same command to resume).
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import get_args

import click

from control import cli_evaluation
from handler.settings import HandlerSettings
from shared.dataset import (describe, load_dataset, min_quality as by_quality, split_conversations,
                            to_chat_jsonl, to_sequences)
from shared.errors import ConfigError, DatasetError, Interrupted, PipelineError, Problem
from shared.job_input import OVERRIDABLE, Hyperparameters, JobInput, Method, job_setting
from shared.presets import DEFAULT_PRESET, PRESETS
from shared.storage import LocalStorage
from shared.storage.layout import JobLayout, complete_checkpoints

# The training stack (torch, transformers, peft) is an optional extra: the commands import
# it inside their bodies, so `pip install .` gives validate and convert without it.

EXIT_INTERNAL, EXIT_USER, EXIT_INTERRUPTED = 1, 2, 130


def _fail(exc: PipelineError, as_json: bool = False) -> None:
    if as_json:
        click.echo(json.dumps({"ok": False, "error": exc.to_dict()}, indent=2))
    else:
        click.secho(f"error: {exc.message}", fg="red", err=True)
        if exc.fix:
            click.echo(f"fix: {exc.fix}", err=True)
    if isinstance(exc, Interrupted):
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(EXIT_USER if exc.error_type.is_user_error else EXIT_INTERNAL)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Train LoRA adapters on conversation datasets, and prove the data works."""


# ------------------------------------------------------------------------ validate
@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print statistics or errors as JSON.")
@click.option("--format", "fmt", type=click.Choice(["brightrun-lora-v4", "chat-jsonl"]),
              help="Skip format detection.")
@click.option("--base-model", default=None,
              help="Count tokens with this model's tokenizer (default: the embedded model's, "
                   "when the training extras are installed).")
@click.option("--estimate-tokens", is_flag=True, help="Estimate tokens without a tokenizer.")
@click.option("--min-quality", type=click.IntRange(1, 5), help="Drop pairs scored below this.")
def validate(file, as_json, fmt, base_model, estimate_tokens, min_quality):
    """Check a dataset file: exit 0 with statistics, or non-zero with every error."""
    settings = HandlerSettings.from_env()
    try:
        dataset = by_quality(load_dataset(file, fmt=fmt, max_bytes=settings.dataset_max_bytes),
                             min_quality)
        counter = None if estimate_tokens else _token_counter(base_model, settings)
        stats = describe(dataset, counter)
    except PipelineError as exc:
        _fail(exc, as_json)
    if as_json:
        click.echo(json.dumps({"ok": True, "file": str(file), "stats": stats}, indent=2))
        return
    _print_stats(file, stats)


def _token_counter(base_model: str | None, settings):
    try:
        from handler import base_models
        from handler.tokenization import render
    except ImportError:
        if base_model:
            raise click.UsageError("--base-model needs the training extras: pip install '.[handler]'")
        return None
    name = base_model or base_models.EMBEDDED
    try:
        location = base_models.materialize(base_models.resolve(name), settings.model_cache)
        tok = base_models.load_tokenizer(location, name, settings.hf_token)
    except PipelineError:
        if base_model:
            raise
        return None
    return lambda seq: len(tok(render(tok, seq.messages), add_special_tokens=False)["input_ids"])


def _print_stats(file, s: dict) -> None:
    click.secho(f"{file}: valid {s['format']}", fg="green")
    click.echo(f"  conversations      {s['conversations']}")
    click.echo(f"  training pairs     {s['trainable_pairs']} of {s['pairs']} "
               f"({s['skipped_null_targets']} with a null target skipped"
               + (f", {s['skipped_low_quality']} below the quality minimum" if s['skipped_low_quality'] else "")
               + ")")
    t, f = s["tokens"], s["folding"]
    click.echo(f"  tokens             {t['folded']:,} folded, {t['unfolded']:,} pair by pair "
               f"({t['saved_pct']}% saved; {t['counted_with']})")
    click.echo(f"  folding            {f['pairs']} pairs in {f['sequences']} sequences, "
               f"{f['folded_pairs']} pairs folded")
    if s["quality_scores"]:
        dist = ", ".join(f"{k}: {v}" for k, v in s["quality_scores"].items())
        click.echo(f"  quality scores     mean {s['quality_mean']} ({dist})")
    for key, dist in s["scaffolding"].items():
        if dist:
            click.echo(f"  {key:<18} " + ", ".join(f"{k} {v}" for k, v in dist.items()))
    for w in s["warnings"]:
        click.secho(f"  warning: {w}", fg="yellow")


# ------------------------------------------------------------------------ convert
@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--to", "target", type=click.Choice(["chat-jsonl"]), required=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--fold/--pairs", default=False,
              help="One line per folded conversation (earlier replies weight 0) or, by "
                   "default, one line per training pair.")
@click.option("--min-quality", type=click.IntRange(1, 5))
def convert(file, target, out, fold, min_quality):
    """Convert a dataset to chat JSONL, to inspect exactly what is trained on."""
    try:
        dataset = by_quality(load_dataset(file, max_bytes=HandlerSettings.from_env().dataset_max_bytes),
                             min_quality)
    except PipelineError as exc:
        _fail(exc)
    sequences = to_sequences(dataset.conversations, fold=fold)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for line in to_chat_jsonl(sequences):
                fh.write(line + "\n")
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    click.echo(f"wrote {len(sequences)} lines ({sum(s.n_targets for s in sequences)} training "
               f"pairs) to {out}")


# ------------------------------------------------------------------------ train
# The flags of single settings whose flag is not the setting's name; every other one is its
# name with dashes (--batch-size, --lora-r, ...).
SETTING_FLAGS = {"num_epochs": "--epochs", "gradient_accumulation_steps": "--grad-accum",
                 "checkpoint_every_steps": "--checkpoint-every"}


def setting_flag(name: str) -> str:
    return SETTING_FLAGS.get(name, "--" + name.replace("_", "-"))


def describe_range(bounds: dict) -> str:
    """A setting's bounds as click describes a range: ``1<=x<=100``, ``0<x<=1``, ``x>=1``."""
    low = (f"{bounds['ge']}<=" if "ge" in bounds else f"{bounds['gt']}<" if "gt" in bounds else "")
    high = (f"<={bounds['le']}" if "le" in bounds else f"<{bounds['lt']}" if "lt" in bounds else "")
    if low and not high:
        return "x" + (f">={bounds['ge']}" if "ge" in bounds else f">{bounds['gt']}")
    return f"{low}x{high}" if low or high else ""


def _setting_options(command):
    """One option per single setting (``shared.job_input.OVERRIDABLE``), typed, described and
    bounded as the job input defines it. The values are checked there rather than by click, so
    every problem is reported at once: the hyperparameters (``**overrides``) by
    ``Hyperparameters.for_preset``, the checkpoint interval (``checkpoint_every``) by
    ``JobInput.parse``."""
    preset_filled = PRESETS[DEFAULT_PRESET].hyperparameters()
    for name in reversed(OVERRIDABLE):          # click lists options in the order decorated
        s = job_setting(name)
        flag = setting_flag(name)
        dest = name if name in Hyperparameters.model_fields else flag[2:].replace("-", "_")
        text = s.description or name.replace("_", " ")
        text = text[0].upper() + text[1:]
        if name in preset_filled:
            text += "; overrides the preset's"
        extras = [e for e in (f"default: {s.default}" if s.default is not None else "",
                              describe_range(s.bounds)) if e]
        command = click.option(flag, dest, type=s.type, default=s.default,
                               help=f"{text}." + (f"  [{'; '.join(extras)}]" if extras else ""))(command)
    return command


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Run directory: checkpoints, adapter/, metrics.jsonl, summary.json.")
@click.option("--preset", type=click.Choice(list(PRESETS)), default=DEFAULT_PRESET, show_default=True)
@click.option("--base-model", default="embedded", show_default=True,
              help="'embedded', a model directory, a .gguf file or a Hugging Face id.")
@click.option("--method", type=click.Choice(get_args(Method)),
              default=JobInput.model_fields["method"].default, show_default=True)
@_setting_options
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--validation-fraction", type=float, default=0.2, show_default=True)
@click.option("--min-quality", type=click.IntRange(1, 5))
@click.option("--fold/--no-fold", default=True, show_default=True,
              help="Fold each conversation's pairs into one sequence where exact.")
@cli_evaluation.options
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(file, out_dir, preset, base_model, method, seed, checkpoint_every,
          validation_fraction, min_quality, fold, quiet, eval_size, max_new_tokens, prompts, **overrides):
    """Train a LoRA adapter on FILE; run again on the same --out to resume."""

    settings = HandlerSettings.from_env()     # the environment, read once for this run
    try:
        # Every problem the settings and the file can show is reported before anything
        # is written.
        dataset = by_quality(load_dataset(file, max_bytes=settings.dataset_max_bytes), min_quality)
        if not dataset.conversations:
            raise DatasetError([Problem("dataset", f"no training pair has a quality score of "
                                        f"{min_quality} or more", "min_quality")])
        split_conversations(dataset.conversations, validation_fraction, seed)
        hp = Hyperparameters.for_preset(preset, overrides)
        data = file.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        job = JobInput.parse({
            "job_id": "local", "attempt": 1,
            "dataset": {"key": f"dataset/{sha[:16]}{''.join(file.suffixes[-1:]) or '.json'}",
                        "sha256": sha},
            "base_model": base_model, "method": method, "preset": preset,
            "hyperparameters": hp.model_dump(mode="json"),
            "checkpoint": {"every_steps": checkpoint_every, "prefix": ""},
            "validation": {"fraction": validation_fraction, "seed": seed},
            "data": {"fold": fold, "min_quality_score": min_quality},
            "seed": seed,
            "evaluation": cli_evaluation.settings(eval_size, max_new_tokens, prompts),
        })
    except PipelineError as exc:
        _fail(exc)

    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    lock = open(out_dir / ".lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        click.secho(f"error: another run is using {out_dir}", fg="red", err=True)
        sys.exit(EXIT_USER)
    storage = LocalStorage(out_dir)
    if not storage.exists(job.dataset.key):
        storage.put_bytes(job.dataset.key, data)
    cli_evaluation.store_prompts(storage, prompts)

    stop = _StopFlag()
    _run_training(job, storage, settings, out_dir, stop, quiet, created)


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@cli_evaluation.options
@click.option("--quiet", is_flag=True, help="No progress messages.")
def evaluate(run_dir, eval_size, max_new_tokens, prompts, quiet):
    """Evaluate a finished local run (RUN_DIR, the --out of pipeline train) again: the whole
    suite, a larger sample, or with your own prompts. Its results go to
    RUN_DIR/evaluations/<run id>/."""
    storage = LocalStorage(run_dir)
    settings = HandlerSettings.from_env()
    try:
        if not storage.exists(JobLayout("").summary):
            raise ConfigError([Problem("run_dir", f"{run_dir} holds no finished run (no summary.json)")],
                              fix="Run pipeline train to the end first.")
        ckpts = complete_checkpoints(storage, JobLayout(""))
        if not ckpts or "job" not in ckpts[0].manifest.get("meta", {}):
            raise ConfigError([Problem("run_dir", f"{run_dir} has no checkpoint recording its settings")])
        run_id = "local-" + time.strftime("%Y%m%d-%H%M%S")
        job = JobInput.parse({**ckpts[0].manifest["meta"]["job"], "kind": "evaluate", "attempt": 1,
                              "evaluation": {**cli_evaluation.settings(eval_size, max_new_tokens, prompts),
                                             "run_id": run_id}})
    except PipelineError as exc:
        _fail(exc)
    cli_evaluation.store_prompts(storage, prompts)
    _run_training(job, storage, settings, run_dir, _StopFlag(), quiet, created=False)


class _StopFlag:
    """First Ctrl-C or SIGTERM: checkpoint after this step and exit. Second Ctrl-C: now."""

    def __init__(self):
        self.requested = False
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        click.echo("\nstopping: saving a checkpoint after this step (Ctrl-C again to quit now)",
                   err=True)

    def __call__(self) -> bool:
        return self.requested


def _run_training(job, storage, settings, out_dir: Path, stop, quiet: bool, created: bool) -> None:
    from tqdm import tqdm
    from transformers.utils import logging as hf_logging

    from handler.recipe import Recipe

    # Libraries' deprecation notices and per-file progress bars are noise to a user here.
    warnings.filterwarnings("ignore", category=FutureWarning)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()

    bar = None
    summary = None
    try:
        for event in Recipe(job, storage, settings=settings, should_stop=stop).run():
            kind = event["type"]
            if kind == "stage":
                if bar is None:
                    note = f" ({event['message']})" if event.get("message") else ""
                    click.echo(f"[{event['stage']}]{note}", err=True)
            elif kind == "warning":
                (bar.write if bar else lambda m: click.echo(m, err=True))(
                    click.style(f"warning: {event['message']}", fg="yellow"))
            elif kind == "metrics":
                if bar is None and not quiet:
                    bar = tqdm(total=event["total_steps"], initial=event["step"] - 1,
                               desc="training", unit="step", file=sys.stderr, dynamic_ncols=True)
                if bar is not None:
                    bar.set_postfix(loss=f"{event['loss']:.4f}", lr=f"{event['lr']:.2e}",
                                    tok_s=f"{event['tokens_per_second']:.0f}")
                    bar.update(1)
            elif kind == "heartbeat" and bar is None and not quiet:
                click.echo(f"  still {event['activity']} ({event['elapsed_seconds']:.0f} s)", err=True)
            elif kind == "checkpoint" and bar is not None:
                bar.write(f"checkpoint at step {event['step']}")
            elif kind == "completed":
                summary = event["summary"]
            if bar is not None and kind == "stage" and event["stage"] != "training":
                bar.close()
                bar = None
                click.echo(f"[{event['stage']}]", err=True)
    except PipelineError as exc:
        if bar is not None:
            bar.close()
        if created and exc.error_type.is_user_error and not storage.list("checkpoints"):
            shutil.rmtree(out_dir, ignore_errors=True)   # leave nothing that looks like a run
        _fail(exc)
    except KeyboardInterrupt:
        click.secho("\nstopped without a checkpoint; the run resumes from the last one",
                    fg="yellow", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # the platform's fault, not the user's: keep the trace
        log = out_dir / "error.log"
        log.write_text(traceback.format_exc())
        click.secho(f"internal error: {type(exc).__name__}: {exc}", fg="red", err=True)
        click.echo(f"the full trace is in {log}", err=True)
        sys.exit(EXIT_INTERNAL)
    finally:
        if bar is not None:
            bar.close()
    if summary is not None and job.kind == "evaluate":
        layout = JobLayout(job.checkpoint.prefix).re_evaluation(job.evaluation.run_id).evaluation
        click.echo("")
        cli_report.print_evaluation(storage, layout, summary["eval"], out_dir)
    else:
        cli_report.print_result(out_dir, storage, JobLayout(job.checkpoint.prefix).evaluation, summary)


from control import cli_report, service_cli  # noqa: E402

service_cli.register(main)

if __name__ == "__main__":
    main()
