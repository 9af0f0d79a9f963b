"""Training throughput: this recipe against the product documents' reference setup.

A benchmark, not a test. It trains the same training split of the same dataset twice, in
one process, on the same base model and the same LoRA settings (balanced preset: r=16,
alpha=32, dropout 0.05, all attention and MLP projections):

- OURS: ``handler.recipe.Recipe`` as a job runs it: conversations folded into as few
  exact sequences as possible, ``batch_size`` training pairs per optimizer step, each step's
  sequences grouped into micro-batches of at most ``batch_size x max_seq_length`` real
  tokens, each packed into one row without padding (positions restart per sequence,
  attention stays within each sequence: ``handler/packing.py``), plain AdamW.
- REFERENCE: TRL ``SFTTrainer`` on pair-expanded data (one row per training pair: the
  prompt messages and the assistant target, as a conversational prompt/completion dataset,
  so the loss is on the completion only and the model's own chat template renders it),
  batch ``batch_size``, no packing, paged AdamW 32-bit, default dataloader shuffling.

Only training steps are timed: for OURS the recipe's own per-step times (data collation,
forward, backward, clipping, optimizer and scheduler step), for REFERENCE the time between
``on_step_begin`` and ``on_step_end`` (forward, backward, clipping, optimizer and scheduler
step; the batch is fetched just before). Model loading, dataset preparation, the recipe's
evaluation and saving are not timed. Real tokens are non-padding tokens
(``attention_mask.sum()``) of the batches actually trained on. The process's CPU time over
the same steps is counted too: on a machine shared with other work, wall-clock ratios move
with the other work, CPU-time ratios much less (with ``--threads 1``, hardly at all).

Run it from the repository root (several minutes on a CPU; offline; needs the ``bench``
extra, i.e. trl and datasets)::

    .venv/bin/python benchmarks/training_throughput.py [--steps 8] [--batch-size 4]
        [--model embedded|MODEL_DIR] [--dataset examples/sample_dataset.json] [--threads N]

It prints a table, the same figures as one line starting with ``JSON: ``, and last the
ratios and this recipe's padding fraction as one line::

    ratio_pairs_per_s=X ratio_tokens_per_s=Y padding=Z
"""
from __future__ import annotations

import os

# Never touch the network: the base model comes from the local GGUF cache or a directory.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DATASETS_VERBOSITY", "error")

import argparse  # noqa: E402
import gc  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from handler import base_models  # noqa: E402
from handler.settings import HandlerSettings  # noqa: E402
from shared.dataset import load_dataset, split_conversations  # noqa: E402
from shared.presets import PRESETS, TARGET_MODULES  # noqa: E402

PRESET = "balanced"
VALIDATION_FRACTION = 0.2
SEED = 42
MAX_LENGTH = 2048


def log(message: str) -> None:
    """Progress goes to stderr, so stdout holds only the results."""
    print(message, file=sys.stderr, flush=True)


def quiet() -> None:
    import datasets
    import transformers
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.utils.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)


# -------------------------------------------------------------------- ours
def run_ours(model: str, dataset_path: Path, fmt: str, batch_size: int, steps: int,
             settings: HandlerSettings) -> dict:
    from shared.job_input import Hyperparameters, JobInput
    from shared.storage import LocalStorage

    TimedRecipe = _timed_recipe()
    data = dataset_path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    key = f"datasets/{sha}{''.join(dataset_path.suffixes) or '.json'}"
    hp = Hyperparameters.for_preset(PRESET, {
        "batch_size": batch_size, "gradient_accumulation_steps": 1, "max_steps": steps})
    with tempfile.TemporaryDirectory(prefix="bench-ours-") as tmp:
        storage = LocalStorage(tmp)
        storage.put_bytes(key, data)
        job = JobInput.parse({
            "job_id": "throughput-bench",
            "dataset": {"key": key, "sha256": sha, "format": fmt},
            "base_model": model, "method": "lora", "preset": PRESET,
            "hyperparameters": hp.model_dump(mode="json"),
            # No interval checkpoints: only the final one, after training.
            "checkpoint": {"every_steps": 1_000_000, "prefix": "jobs/throughput-bench"},
            "validation": {"fraction": VALIDATION_FRACTION, "seed": SEED},
            # The evaluating stage is not timed: the quickest one, and one validation loss.
            "evaluation": {"size": "perplexity", "every_steps": 1_000_000},
            "data": {"fold": True}, "seed": SEED})
        recipe = TimedRecipe(job, storage, settings=settings)
        summary = None
        t0 = time.monotonic()
        for event in recipe.run():
            kind = event["type"]
            if kind == "metrics":
                log(f"  [ours] step {event['step']}/{event['total_steps']} loss {event['loss']:.4f} "
                    f"{event['tokens_per_second']:.0f} tok/s")
            elif kind == "stage":
                log(f"  [ours] {event['stage']}")
            elif kind == "warning":
                log(f"  [ours] warning {event['code']}: {event['message']}")
            elif kind == "completed":
                summary = event["summary"]
        wall = time.monotonic() - t0
    if summary is None:
        raise RuntimeError("the recipe ended without a 'completed' event")
    seqs = recipe.train.sequences
    done = recipe.plan[:recipe.step]
    pairs = sum(seqs[i].n_targets for _, indices in done for i in indices)
    result = {
        "steps": recipe.step,
        "pairs": pairs,
        "real_tokens": recipe.train_tokens,
        "padded_tokens": recipe.padded_tokens,
        "train_seconds": recipe.elapsed,
        "train_cpu_seconds": recipe.cpu_seconds,
        "wall_seconds": wall,
        "wall_note": "whole recipe run: data, model load, training, eval, save",
        "train_pairs_available": recipe.train.targets,
        "sequences": len(seqs),
        "attention": recipe.attention,
        "summary_tokens_per_second": summary["tokens_per_second"],
        "final_loss": summary["final_loss"],
    }
    del recipe
    gc.collect()
    return result


def _timed_recipe():
    from handler.recipe import Recipe

    class TimedRecipe(Recipe):
        """The recipe, also counting the process's CPU time of each training step."""
        cpu_seconds = 0.0

        def _train_step(self, micro):
            t0 = time.process_time()
            try:
                return super()._train_step(micro)
            finally:
                self.cpu_seconds += time.process_time() - t0

    return TimedRecipe


# -------------------------------------------------------------------- reference
def reference_rows(train_conversations) -> list[dict]:
    """Pair expansion: one prompt/completion row per training pair."""
    return [{"prompt": [m.to_dict() for m in ex.prompt],
             "completion": [{"role": "assistant", "content": ex.target}]}
            for conv in train_conversations for ex in conv.examples]


def run_reference(model_dir: str, rows: list[dict], batch_size: int, steps: int) -> dict:
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import (AutoModelForCausalLM, AutoTokenizer, PrinterCallback,
                              TrainerCallback)
    from trl import SFTConfig, SFTTrainer

    preset = PRESETS[PRESET]

    class Meter:
        real = padded = pairs = batches = 0

    meter = Meter()

    class CountingSFTTrainer(SFTTrainer):
        # Counted where a batch is trained on, not in the collator: the dataloader fetches
        # a batch ahead, so a collator wrapper would also count one batch never trained.
        def training_step(self, *args, **kwargs):
            inputs = args[1] if len(args) > 1 else kwargs["inputs"]
            ids = inputs["input_ids"]
            attn = inputs.get("attention_mask")
            meter.real += int(attn.sum()) if attn is not None else ids.numel()
            meter.padded += ids.numel()
            meter.pairs += ids.shape[0]
            meter.batches += 1
            return super().training_step(*args, **kwargs)

    class StepTimer(TrainerCallback):
        seconds = cpu_seconds = 0.0
        steps = 0
        _t0 = _c0 = None

        def on_step_begin(self, args, state, control, **kw):
            self._t0, self._c0 = time.monotonic(), time.process_time()

        def on_step_end(self, args, state, control, **kw):
            if self._t0 is not None:
                self.seconds += time.monotonic() - self._t0
                self.cpu_seconds += time.process_time() - self._c0
                self.steps += 1
                self._t0 = None

    class Progress(TrainerCallback):
        last_loss = None

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                self.last_loss = logs["loss"]
                log(f"  [reference] step {state.global_step}/{state.max_steps} "
                    f"loss {logs['loss']:.4f}")

    torch.manual_seed(SEED)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    peft_config = LoraConfig(r=preset.lora_r, lora_alpha=preset.lora_alpha,
                             lora_dropout=preset.lora_dropout, target_modules=list(TARGET_MODULES),
                             bias="none", task_type="CAUSAL_LM")
    with tempfile.TemporaryDirectory(prefix="bench-reference-") as out:
        config = SFTConfig(
            output_dir=out, per_device_train_batch_size=batch_size,
            gradient_accumulation_steps=1, max_steps=steps, packing=False,
            max_length=MAX_LENGTH, learning_rate=preset.learning_rate,
            lr_scheduler_type="cosine", warmup_steps=preset.warmup_ratio,  # < 1: a ratio
            optim="paged_adamw_32bit", bf16=False, use_cpu=True,
            activation_checkpointing=False, report_to="none", save_strategy="no",
            logging_steps=1, seed=SEED, disable_tqdm=True)
        timer, progress = StepTimer(), Progress()
        log("  [reference] preparing the dataset")
        trainer = CountingSFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(rows),
                                     processing_class=tokenizer, peft_config=peft_config,
                                     callbacks=[timer, progress])
        trainer.remove_callback(PrinterCallback)
        log("  [reference] training")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t0 = time.monotonic()
            output = trainer.train()
            wall = time.monotonic() - t0
        paged_fallback = any("Paged optimizers are not supported on CPU" in str(w.message)
                             for w in caught)
        optimizer = getattr(trainer.optimizer, "optimizer", trainer.optimizer)
        result = {
            "steps": trainer.state.global_step,
            "timed_steps": timer.steps,
            "pairs": meter.pairs,
            "real_tokens": meter.real,
            "padded_tokens": meter.padded,
            "train_seconds": timer.seconds,
            "train_cpu_seconds": timer.cpu_seconds,
            "wall_seconds": wall,
            "wall_note": "trainer.train() (training loop incl. batch fetching and logging)",
            "train_pairs_available": len(rows),
            "optimizer": f"{type(optimizer).__module__}.{type(optimizer).__name__}",
            "paged_fell_back_to_non_paged": paged_fallback,
            "final_loss": progress.last_loss,       # the last step's, as OURS reports
            "mean_loss": output.training_loss,
        }
    del trainer, model
    gc.collect()
    return result


# -------------------------------------------------------------------- report
def derived(r: dict) -> dict:
    secs = r["train_seconds"]
    return {
        **r,
        "padding_pct": 100.0 * (1 - r["real_tokens"] / r["padded_tokens"]) if r["padded_tokens"] else 0.0,
        "real_tokens_per_pair": r["real_tokens"] / r["pairs"] if r["pairs"] else None,
        "real_tokens_per_second": r["real_tokens"] / secs if secs else None,
        "pairs_per_second": r["pairs"] / secs if secs else None,
        "pairs_per_cpu_second": r["pairs"] / r["train_cpu_seconds"] if r["train_cpu_seconds"] else None,
    }


def ratio(a, b):
    return a / b if a and b else None


def print_report(info: dict, ours: dict, ref: dict, ratios: dict) -> None:
    rows = [
        ("optimizer steps", "steps", "{:d}"),
        ("training pairs processed", "pairs", "{:d}"),
        ("real (non-padding) tokens", "real_tokens", "{:,d}"),
        ("padded tokens (rows x width)", "padded_tokens", "{:,d}"),
        ("padding %", "padding_pct", "{:.1f}"),
        ("real tokens per pair", "real_tokens_per_pair", "{:.1f}"),
        ("training seconds (steps only)", "train_seconds", "{:.2f}"),
        ("real tokens / s", "real_tokens_per_second", "{:.1f}"),
        ("training pairs / s", "pairs_per_second", "{:.3f}"),
        ("training CPU seconds (process)", "train_cpu_seconds", "{:.2f}"),
        ("training pairs / CPU second", "pairs_per_cpu_second", "{:.3f}"),
        ("last step's training loss", "final_loss", "{:.4f}"),
    ]
    width = 32
    print()
    print("Training throughput: this recipe (OURS) vs TRL SFTTrainer reference (REFERENCE)")
    print(f"  model: {info['model']} ({info['model_dir']})")
    print(f"  dataset: {info['dataset']} ({info['format']}): {info['train_conversations']} training "
          f"conversations, {info['train_pairs']} training pairs (validation fraction "
          f"{VALIDATION_FRACTION}, seed {SEED})")
    print(f"  batch size {info['batch_size']} pairs/step, {info['steps_requested']} steps requested, "
          f"device cpu, float32, torch threads {info['torch_threads']}")
    print(f"  OURS: preset {PRESET}, folded ({ours['sequences']} sequences for "
          f"{ours['train_pairs_available']} pairs), micro-batches by a token budget, each one "
          f"packed row (attention {ours['attention']}), torch AdamW")
    fallback = (" (bitsandbytes has no paged optimizer on CPU: it fell back to non-paged)"
                if ref["paged_fell_back_to_non_paged"] else "")
    print(f"  REFERENCE: SFTTrainer, pair-expanded prompt/completion rows, no packing, "
          f"optim paged_adamw_32bit -> {ref['optimizer']}{fallback}")
    print()
    print(f"{'':{width}} {'OURS':>14} {'REFERENCE':>14}")
    for label, key, fmt in rows:
        cells = []
        for side in (ours, ref):
            value = side.get(key)
            cells.append("n/a" if value is None else fmt.format(value))
        print(f"{label:{width}} {cells[0]:>14} {cells[1]:>14}")
    print(f"{'wall seconds (see note)':{width}} {ours['wall_seconds']:>14.1f} {ref['wall_seconds']:>14.1f}")
    print()

    def show(x):
        return "n/a" if x is None else f"{x:.2f}x"

    print(f"OURS / REFERENCE  real tokens/s: {show(ratios['real_tokens_per_second'])}   "
          f"training pairs/s: {show(ratios['pairs_per_second'])}  <- effective speed-up")
    print(f"                  training pairs per CPU second: {show(ratios['pairs_per_cpu_second'])}  "
          "(the process's CPU time: less sensitive to other work on a shared machine)")
    print()
    print("Note: tokens/s is raw compute speed on non-padding tokens; pairs/s is what matters, "
          "since folding trains the same targets with fewer tokens (real tokens per pair), so "
          "the pairs/s ratio is the effective speed-up (OURS keeps folded sequences whole, so a "
          "step can hold more than the batch size in pairs). Step times only: model loading, data "
          f"preparation, evaluation and saving are excluded. Wall: OURS = {ours['wall_note']}; "
          f"REFERENCE = {ref['wall_note']}. CPU timings are noisy when the machine is shared.")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=base_models.EMBEDDED,
                        help="'embedded' (SmolLM2-135M-Instruct from its GGUF) or a transformers "
                        "model directory (default: %(default)s)")
    parser.add_argument("--dataset", default=str(ROOT / "examples" / "sample_dataset.json"),
                        help="dataset file, brightrun-lora-v4 or chat JSONL (default: the sample)")
    parser.add_argument("--steps", type=int, default=8,
                        help="optimizer steps for each side (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=4,
                        help="training pairs per optimizer step (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's own choice); on a CPU shared "
                        "with other work, fewer threads than cores avoids stalls")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.batch_size < 1 or (args.threads is not None and args.threads < 1):
        parser.error("--steps, --batch-size and --threads must be at least 1")

    if args.threads:
        torch.set_num_threads(args.threads)
    quiet()
    model = args.model
    if model != base_models.EMBEDDED and Path(model).expanduser().is_dir():
        model = str(Path(model).expanduser().resolve())
    settings = HandlerSettings.from_env()
    model_dir = base_models.materialize(base_models.resolve(model), settings.model_cache)

    dataset_path = Path(args.dataset).expanduser().resolve()
    dataset = load_dataset(dataset_path, max_bytes=settings.dataset_max_bytes)
    train_convs, _ = split_conversations(dataset.conversations, VALIDATION_FRACTION, seed=SEED)
    rows = reference_rows(train_convs)
    info = {
        "model": args.model, "model_dir": model_dir, "dataset": str(args.dataset),
        "format": dataset.format, "train_conversations": len(train_convs),
        "train_pairs": len(rows), "batch_size": args.batch_size,
        "steps_requested": args.steps, "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }

    started = time.monotonic()
    log(f"OURS: recipe, {args.steps} steps of {args.batch_size} pairs")
    ours = derived(run_ours(model, dataset_path, dataset.format, args.batch_size, args.steps, settings))
    log(f"REFERENCE: TRL SFTTrainer, {args.steps} steps of {args.batch_size} pairs")
    ref = derived(run_reference(model_dir, rows, args.batch_size, args.steps))
    info["benchmark_wall_seconds"] = round(time.monotonic() - started, 1)

    ratios = {
        "real_tokens_per_second": ratio(ours["real_tokens_per_second"], ref["real_tokens_per_second"]),
        "pairs_per_second": ratio(ours["pairs_per_second"], ref["pairs_per_second"]),
        "pairs_per_cpu_second": ratio(ours["pairs_per_cpu_second"], ref["pairs_per_cpu_second"]),
    }
    print_report(info, ours, ref, ratios)

    def rounded(d):
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in d.items()
                if k != "wall_note"}

    print("JSON: " + json.dumps({"info": info, "ours": rounded(ours), "reference": rounded(ref),
                                 "ratios": rounded(ratios)}))
    print(ratio_line(ratios, ours))
    return 0


def ratio_line(ratios: dict, ours: dict) -> str:
    """The last line: both ratios, and this recipe's padding as a fraction of its tokens.

    >>> ratio_line({"pairs_per_second": 4.2, "real_tokens_per_second": 2.0},
    ...            {"real_tokens": 990, "padded_tokens": 1000})
    'ratio_pairs_per_s=4.20 ratio_tokens_per_s=2.00 padding=0.0100'
    """
    show = lambda x: "n/a" if x is None else f"{x:.2f}"  # noqa: E731
    padding = 1 - ours["real_tokens"] / ours["padded_tokens"] if ours["padded_tokens"] else 0.0
    return (f"ratio_pairs_per_s={show(ratios['pairs_per_second'])} "
            f"ratio_tokens_per_s={show(ratios['real_tokens_per_second'])} padding={padding:.4f}")


if __name__ == "__main__":
    sys.exit(main())
