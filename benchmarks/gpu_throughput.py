"""GPU training throughput: the product's own training step on Llama-3-shaped models with
random weights (built from a config: no download), against the TRL reference on the same
shapes and data.

A benchmark, not a test. Cases, with the production settings (the ``balanced`` preset: LoRA
r=16, alpha 32, dropout 0.05 on all seven linear projections; 4 x 4 = 16 training pairs a
step, in packed micro-batches of at most ``batch_size x max_seq_length`` tokens; AdamW), each
at ``max_seq_length`` 2048 and 4096:

- ``8b-lora``: Llama-3-8B's shape (32 layers, width 4096, MLP 14336, 32 heads, 8 KV heads,
  vocabulary 128256), the product's ``lora`` method on a GPU: bf16 weights, gradient
  checkpointing.
- ``70b-qlora``: Llama-3-70B's shape (width 8192, MLP 28672, 64 heads, 8 KV heads) as a
  slice: the full width and a few layers, the product's ``qlora`` method (NF4 with double
  quantization, bf16 compute, gradient checkpointing). The step time is measured at two
  depths L1 < L2 (one model of L2 layers, run through its first L1 or L2 layers); one
  layer's time is ``(t(L2) - t(L1)) / (L2 - L1)``, the rest (embeddings, head, loss,
  optimizer) ``t(L1) - L1 x layer``, and the 80-layer step ``rest + 80 x layer``. Peak
  memory is scaled the same way: the peak at L2, plus per further layer its resident
  bytes (weights, LoRA, LoRA gradients and AdamW state) and the activation growth measured
  between L1 and L2.

The base model is saved to a temporary directory and loaded by ``handler.base_models``
exactly as a job loads it; LoRA is attached by ``attach_lora``, the attention chosen by
``handler.packing``, and every step is ``handler.training_step.train_step``. The data are
synthetic pairs (a fixed seed): one pair a sequence, lengths uniform in
``[max_seq_length / 2, max_seq_length]``, the loss on the second half of each.

The reference: TRL ``SFTTrainer`` on the same sequences, pre-tokenized, one row per pair,
batch 4, no packing, the same model with LoRA, bf16 and gradient checkpointing, paged AdamW
32-bit when bitsandbytes is there (AdamW otherwise); skipped when trl is not installed.

For each case and side it prints one ``result`` line: real (non-padding) tokens per second,
MFU counting 4 x parameters per token (forward, and backward through frozen weights: LoRA)
and 6 x (a full fine-tune's count, which most published figures use), the peak memory and
the step time; then a ``ratio`` line (ours / reference, real tokens per second). MFU is
against the GPU's dense bf16 peak (``--peak-tflops`` overrides it; n/a when unknown).

``--tiny`` runs the same code at tiny shapes on the CPU, in seconds (``tests/test_gpu_throughput.py``)::

    python benchmarks/gpu_throughput.py [--tiny] [--cases 8b-lora,70b-qlora] [--seqs 2048,4096]
        [--steps 3] [--peak-tflops 989]
"""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import argparse  # noqa: E402
import gc  # noqa: E402
import importlib.util  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from handler import base_models, batching, packing  # noqa: E402
from handler.tokenization import Encoded  # noqa: E402
from handler.training_step import train_step  # noqa: E402
from shared.job_input import Hyperparameters  # noqa: E402

PRESET = "balanced"
SEED = 0
LLAMA3 = dict(vocab_size=128256, num_attention_heads=None, rope_theta=500000.0, rms_norm_eps=1e-5,
              max_position_embeddings=8192, tie_word_embeddings=False)
SHAPES = {
    "8b": dict(LLAMA3, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
               num_attention_heads=32, num_key_value_heads=8),
    "70b": dict(LLAMA3, hidden_size=8192, intermediate_size=28672, num_hidden_layers=80,
                num_attention_heads=64, num_key_value_heads=8),
}
TINY_SHAPES = {
    "8b": dict(LLAMA3, vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2),
    "70b": dict(LLAMA3, vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=8,
                num_attention_heads=4, num_key_value_heads=2),
}
# Dense bf16 tensor-core peaks, by the name CUDA gives the device.
PEAK_BF16 = (("H100 PCIe", 756e12), ("H100", 989e12), ("H200", 989e12), ("H800", 989e12),
             ("A100", 312e12), ("L40S", 362e12))


@dataclass(frozen=True)
class Case:
    name: str
    shape: str
    method: str
    depths: tuple[int, int] | None    # the slice's two depths, or None: the whole model


CASES = (Case("8b-lora", "8b", "lora", None), Case("70b-qlora", "70b", "qlora", (2, 4)))
TINY_DEPTHS = {"70b-qlora": (1, 2)}


STARTED = time.monotonic()


def log(message: str) -> None:
    """Progress goes to stderr, with the seconds since the start; stdout holds the results."""
    print(f"[{time.monotonic() - STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


def emit(kind: str, **fields) -> None:
    """One result line: ``kind key=value ...`` (a value with spaces is quoted)."""
    def show(v):
        if v is None:
            return "n/a"
        if isinstance(v, float):
            return f"{v:.4g}" if abs(v) < 1 else f"{v:.1f}" if abs(v) >= 100 else f"{v:.3f}"
        text = str(v)
        return f'"{text}"' if " " in text else text
    print(kind + " " + " ".join(f"{k}={show(v)}" for k, v in fields.items()), flush=True)


def quiet() -> None:
    import transformers
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    if importlib.util.find_spec("datasets"):
        import datasets
        datasets.utils.logging.set_verbosity_error()
        datasets.disable_progress_bars()


# -------------------------------------------------------------------- shapes and counts
def parameter_count(shape: dict) -> int:
    """Parameters of the whole model of ``shape`` (embeddings and head included)."""
    h, heads, kv = shape["hidden_size"], shape["num_attention_heads"], shape["num_key_value_heads"]
    head_dim = h // heads
    layer = h * head_dim * (2 * heads + 2 * kv) + 3 * h * shape["intermediate_size"] + 2 * h
    embeddings = shape["vocab_size"] * h * (1 if shape["tie_word_embeddings"] else 2)
    return shape["num_hidden_layers"] * layer + embeddings + h


def peak_flops(device: torch.device, override_tflops: float | None) -> float | None:
    if override_tflops:
        return override_tflops * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16 if key in name), None)


def installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def four_bit_missing(device: torch.device, tiny: bool) -> str | None:
    """Why the 4-bit NF4 case cannot run here, or None."""
    if not installed("bitsandbytes"):
        return ("bitsandbytes is not installed, so there is no 4-bit NF4 base: the QLoRA case "
                "is skipped (pip install bitsandbytes; on the device machine, carry its wheel)")
    if device.type != "cuda" and not tiny:
        return "no CUDA device: the 4-bit NF4 case (bf16 compute) needs a GPU"
    return None


# -------------------------------------------------------------------- data and model
def synthetic_sequences(n: int, seq: int, vocab: int, seed: int) -> list[Encoded]:
    """``n`` pairs, one a sequence: lengths uniform in [seq/2, seq], loss on the second half."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        length = rng.randint(seq // 2, seq)
        ids = tuple(rng.randrange(3, vocab) for _ in range(length))
        prompt = length // 2
        out.append(Encoded(ids, (False,) * prompt + (True,) * (length - prompt), f"c{i}", (f"p{i}",)))
    return out


def save_random_model(shape: dict, layers: int, device: torch.device, directory: Path) -> None:
    """A Llama of ``shape`` with ``layers`` layers and random weights, saved for ``load_model``."""
    from transformers import LlamaConfig, LlamaForCausalLM
    config = LlamaConfig(**{**shape, "num_hidden_layers": layers})
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    torch.manual_seed(SEED)
    with torch.device(device):
        model = LlamaForCausalLM._from_config(config, dtype=dtype)
    model.save_pretrained(directory)
    del model
    free_memory(device)


def free_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def set_depth(model, layers: int) -> None:
    """Run the model through its first ``layers`` decoder layers only."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base.config.num_hidden_layers = layers


def layer_resident_bytes(model) -> int:
    """One decoder layer's bytes once trained: its weights and buffers (4-bit ones included),
    and its LoRA parameters three more times (gradients, AdamW's two moments, in fp32)."""
    base = model.get_base_model()
    layer = base.model.layers[0]
    total = sum(t.numel() * t.element_size() for t in [*layer.parameters(), *layer.buffers()])
    for p in layer.parameters():
        state = getattr(p, "quant_state", None)
        if state is not None:
            total += sum(t.numel() * t.element_size() for t in state.as_dict(packed=True).values()
                         if isinstance(t, torch.Tensor))
    lora = sum(p.numel() for p in layer.parameters() if p.requires_grad)
    return total + lora * 4 * 3


def scale_to_depth(at_low: float, at_high: float, low: int, high: int, full: int,
                   extra_per_layer: float = 0.0) -> float:
    """A figure measured at ``low`` and ``high`` layers, at ``full`` layers: the value at
    ``high`` plus, for each further layer, the growth per layer between the two (and
    ``extra_per_layer``).

    >>> scale_to_depth(1.5, 2.0, 2, 4, 80)      # 0.25 a layer, 1.0 for the rest
    21.0
    """
    return at_high + (full - high) * ((at_high - at_low) / (high - low) + extra_per_layer)


# -------------------------------------------------------------------- timing
class Meter:
    def __init__(self, device: torch.device):
        self.device = device

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def reset_peak(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_gib(self) -> float | None:
        if self.device.type != "cuda":
            return None
        return torch.cuda.max_memory_allocated(self.device) / 2**30


def run_ours(model, sequences, hp, device, warmup: int, steps: int) -> dict:
    """The product's training step over ``warmup + steps`` steps of the preset's batch."""
    from transformers import get_scheduler
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=hp.learning_rate, weight_decay=hp.weight_decay)
    scheduler = get_scheduler("constant", optimizer)
    per_step = hp.targets_per_step
    lengths = [len(e) for e in sequences]
    meter = Meter(device)
    meter.reset_peak()
    seconds, real, losses = 0.0, 0, []
    for s in range(warmup + steps):
        indices = list(range(s * per_step, (s + 1) * per_step))
        micro = batching.micro_batches(indices, lengths, batching.token_budget(hp))
        meter.sync()
        t0 = time.perf_counter()
        done = train_step(model, params, optimizer, scheduler, sequences, micro, device, hp.max_grad_norm)
        meter.sync()
        if s >= warmup:
            seconds += time.perf_counter() - t0
            real += done.real_tokens
            losses.append(done.loss)
    result = {"steps": steps, "seconds": seconds, "real_tokens": real, "peak_gib": meter.peak_gib(),
              "loss": losses[-1]}
    optimizer.zero_grad(set_to_none=True)
    del optimizer, scheduler
    return result


def run_reference(model, sequences, hp, device, warmup: int, steps: int) -> dict:
    """TRL ``SFTTrainer``: one row per pair, batch 4, no packing, on the same model."""
    from datasets import Dataset
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast, PrinterCallback, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    meter = Meter(device)
    batch = hp.batch_size
    rows = sequences[:batch * (warmup + steps)]
    data = Dataset.from_dict({
        "input_ids": [list(e.input_ids) for e in rows],
        "labels": [[t if m else -100 for t, m in zip(e.input_ids, e.trained)] for e in rows]})
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel({"<pad>": 0, "<unk>": 1, "</s>": 2}, unk_token="<unk>")),
        pad_token="<pad>", unk_token="<unk>", eos_token="</s>")

    class Timer(TrainerCallback):
        def __init__(self):
            self.seconds, self.count, self.t0, self.losses = 0.0, 0, None, []

        def on_step_begin(self, args, state, control, **kw):
            meter.sync()
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            meter.sync()
            if state.global_step > warmup:
                self.seconds += time.perf_counter() - self.t0
                self.count += 1

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                self.losses.append(logs["loss"])

    counted = {"real": 0}

    class Counting(SFTTrainer):
        def training_step(self, *args, **kwargs):
            inputs = args[1] if len(args) > 1 else kwargs["inputs"]
            if self.state.global_step >= warmup:
                attn = inputs.get("attention_mask")
                counted["real"] += int(attn.sum()) if attn is not None else inputs["input_ids"].numel()
            return super().training_step(*args, **kwargs)

    on_gpu = device.type == "cuda"
    optim = "paged_adamw_32bit" if on_gpu and installed("bitsandbytes") else "adamw_torch"
    timer = Timer()
    with tempfile.TemporaryDirectory(prefix="gpu-bench-reference-") as out:
        config = SFTConfig(
            output_dir=out, per_device_train_batch_size=batch, gradient_accumulation_steps=1,
            max_steps=warmup + steps, packing=False, max_length=hp.max_seq_length,
            learning_rate=hp.learning_rate, lr_scheduler_type="constant", optim=optim,
            bf16=on_gpu, use_cpu=not on_gpu, activation_checkpointing=on_gpu,
            report_to="none", save_strategy="no", logging_steps=1, seed=SEED, disable_tqdm=True,
            dataloader_pin_memory=on_gpu)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer = Counting(model=model, args=config, train_dataset=data, processing_class=tokenizer,
                               callbacks=[timer])
            trainer.remove_callback(PrinterCallback)
            meter.reset_peak()
            trainer.train()
    result = {"steps": timer.count, "seconds": timer.seconds, "real_tokens": counted["real"],
              "peak_gib": meter.peak_gib(), "loss": timer.losses[-1] if timer.losses else None}
    del trainer
    return result


# -------------------------------------------------------------------- a case
def measure(side: str, model, sequences, hp, device, case: Case, depths, warmup, steps, full_layers):
    """One side of one case: at full depth, or at the slice's two depths and extrapolated."""
    run = run_ours if side == "ours" else run_reference
    if depths is None:
        set_depth(model, full_layers)
        r = run(model, sequences, hp, device, warmup, steps)
        return {**r, "step_s": r["seconds"] / r["steps"], "tokens_per_step": r["real_tokens"] / r["steps"],
                "layers": str(full_layers)}
    low, high = depths
    got = {}
    for depth in depths:
        set_depth(model, depth)
        free_memory(device)
        got[depth] = run(model, sequences, hp, device, warmup, steps)
    set_depth(model, high)
    t_low, t_high = (got[d]["seconds"] / got[d]["steps"] for d in depths)
    note = None
    if t_high <= t_low:
        note = "no growth between the two depths (timing noise): per-layer time taken as 0"
    step_s = scale_to_depth(t_low, max(t_high, t_low), low, high, full_layers)
    peak = None
    if got[high]["peak_gib"] is not None:
        # The L2-layer model is resident in both runs: the growth is the activations'.
        peak = scale_to_depth(got[low]["peak_gib"], got[high]["peak_gib"], low, high, full_layers,
                              extra_per_layer=layer_resident_bytes(model) / 2**30)
    r = got[high]
    return {**r, "step_s": step_s, "tokens_per_step": r["real_tokens"] / r["steps"], "peak_gib": peak,
            "layers": f"{full_layers}(from:{low},{high})", "measured_step_s": f"{t_low:.4f},{t_high:.4f}",
            **({"note": note} if note else {})}


def run_case(case: Case, seq: int, args, device, peak) -> None:
    shapes = TINY_SHAPES if args.tiny else SHAPES
    shape = shapes[case.shape]
    depths = TINY_DEPTHS.get(case.name, case.depths) if args.tiny else case.depths
    full_layers = shape["num_hidden_layers"]
    if case.method == "qlora":
        reason = four_bit_missing(device, args.tiny)
        if reason:
            emit("skipped", case=case.name, seq=seq, reason=reason)
            return
    hp = Hyperparameters.for_preset(PRESET, {"max_seq_length": seq})
    warmup, steps = args.warmup, args.steps
    sequences = synthetic_sequences(hp.targets_per_step * (warmup + steps), seq, shape["vocab_size"], SEED)
    params = parameter_count(shape)
    with tempfile.TemporaryDirectory(prefix=f"gpu-bench-{case.shape}-", dir=args.work_dir) as tmp:
        log(f"{case.name} seq {seq}: building {depths[1] if depths else full_layers} layers")
        save_random_model(shape, depths[1] if depths else full_layers, device, Path(tmp))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            base = base_models.load_model(tmp, case.name, case.method)
        shutil.rmtree(tmp, ignore_errors=True)
    model = base_models.attach_lora(base, hp, SEED)
    attention = packing.use_packed_attention(model, device)
    log(f"{case.name} seq {seq}: loaded ({case.method}, attention {attention})")
    results = {}
    sides = ["ours"] + (["reference"] if not args.no_reference else [])
    for side in sides:
        if side == "reference" and not installed("trl"):
            emit("skipped", case=case.name, seq=seq, side=side, reason="trl is not installed")
            continue
        log(f"{case.name} seq {seq}: {side}")
        try:
            r = measure(side, model, sequences, hp, device, case, depths, warmup, steps, full_layers)
        except torch.cuda.OutOfMemoryError as exc:
            emit("failed", case=case.name, seq=seq, side=side, reason=f"out of memory: {str(exc)[:120]}")
            free_memory(device)
            continue
        tokens_per_s = r["tokens_per_step"] / r["step_s"] if r["step_s"] else None
        mfu = {k: tokens_per_s * k * params / peak if peak and tokens_per_s else None for k in (4, 6)}
        results[side] = tokens_per_s
        emit("result", case=case.name, seq=seq, side=side, method=case.method, layers=r["layers"],
             attention=attention if side == "ours" else "sdpa-padded",
             params_b=params / 1e9, tokens_per_s=tokens_per_s, mfu_4x=mfu[4], mfu_6x=mfu[6],
             peak_mem_gib=r["peak_gib"], step_s=r["step_s"], tokens_per_step=r["tokens_per_step"],
             loss=r["loss"], **{k: r[k] for k in ("measured_step_s", "note") if k in r})
    if results.get("ours") and results.get("reference"):
        emit("ratio", case=case.name, seq=seq, ratio_tokens_per_s=results["ours"] / results["reference"])
    del model, base
    free_memory(device)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny shapes on the CPU (seconds)")
    parser.add_argument("--cases", default=",".join(c.name for c in CASES),
                        help="comma-separated cases (default: %(default)s)")
    parser.add_argument("--seqs", default=None, help="max_seq_length values (default: 2048,4096; tiny: 32)")
    parser.add_argument("--steps", type=int, default=3, help="timed optimizer steps (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (default: %(default)s)")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the device's dense bf16 peak for MFU (default: from the device's name)")
    parser.add_argument("--no-reference", action="store_true", help="skip the TRL reference")
    parser.add_argument("--work-dir", default=None, help="where the random models are saved for loading")
    args = parser.parse_args(argv)
    names = [n for n in args.cases.split(",") if n]
    unknown = sorted(set(names) - {c.name for c in CASES})
    if unknown or not names:
        parser.error(f"unknown cases {unknown}; choose from {[c.name for c in CASES]}")
    seqs = [int(s) for s in (args.seqs or ("32" if args.tiny else "2048,4096")).split(",")]
    if args.steps < 1 or args.warmup < 0 or any(s < 8 for s in seqs):
        parser.error("--steps must be at least 1, --warmup at least 0, each seq at least 8")
    device = base_models.device()
    if device.type != "cuda" and not args.tiny:
        parser.error("no CUDA device: run with --tiny on a CPU")
    quiet()
    import transformers
    peak = peak_flops(device, args.peak_tflops)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"# device={name!r} peak_bf16_tflops={peak / 1e12 if peak else 'n/a'} torch={torch.__version__} "
          f"transformers={transformers.__version__} tiny={args.tiny}")
    print("# mfu_4x = tokens/s x 4 x params / peak (LoRA: forward + backward through frozen weights); "
          "mfu_6x counts 6 x params (a full fine-tune's count). params: the whole model's.")
    print("# a slice's layers=N(from:L1,L2): step time and peak memory measured at L1 and L2 layers, "
          "scaled to N layers per layer (see the docstring)")
    for case in (c for c in CASES if c.name in names):
        for seq in seqs:
            run_case(case, seq, args, device, peak)
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
