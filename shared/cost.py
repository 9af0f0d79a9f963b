"""The cost and duration model: what a job will cost before it runs, and what it costs so far.

A deliberately simple, documented model (README, "Cost model"):

- **Tokens.** Training processes the training split's tokens once per epoch (the held-out
  split is 20% by default); ``max_steps`` caps the epochs' worth. Evaluation scores the
  held-out tokens twice (base model and adapter), forward only, at three times the
  training speed.
- **Throughput.** LoRA training costs about ``4 × parameters`` FLOPs a token (forward, and
  a backward pass through the frozen base for activation gradients only). A GPU sustains a
  fraction (MFU) of its dense bf16 peak; QLoRA's on-the-fly NF4 dequantization costs a
  further 40%.
- **Overhead.** Provisioning a worker, plus loading the base model at ``load_gb_per_s``
  from the network volume, plus writing checkpoints and outputs.
- **Spot.** Spot workers get reclaimed; each reclaim repeats up to one checkpoint interval
  and reloads the model. The model adds ``spot_rework`` (10%) to spot durations.
- **Cost** is duration × the tier's hourly price. The estimate comes with a ±15% range,
  the documents' accuracy target.

Prices and GPU figures are configurable (``GPU_CATALOG`` / ``gpu_catalog(overrides)``).
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, replace

from shared.errors import ConfigError, Problem

Pricing = str  # "spot" | "on_demand"
PRICING_TIERS = ("spot", "on_demand")


@dataclass(frozen=True)
class GPU:
    type: str
    name: str
    memory_gb: int
    spot_per_hour: float
    on_demand_per_hour: float
    bf16_tflops: float          # dense peak
    mfu: float = 0.35           # fraction of peak LoRA training sustains

    def price(self, pricing: Pricing) -> float:
        return self.spot_per_hour if pricing == "spot" else self.on_demand_per_hour


GPU_CATALOG: dict[str, GPU] = {g.type: g for g in (
    GPU("H100_PCIE", "NVIDIA H100 PCIe 80GB", 80, 2.49, 7.99, 756.0),
    GPU("A100_80GB", "NVIDIA A100 80GB", 80, 1.64, 5.19, 312.0),
    # The embedded default: the local endpoint's workers train on this machine's CPU.
    GPU("LOCAL_CPU", "Local CPU worker (embedded default)", 0, 0.0, 0.0, 0.0),
)}
DEFAULT_GPU = "H100_PCIE"
LOCAL_CPU_TOKENS_PER_SECOND = 125.0   # measured: SmolLM2-135M LoRA on 2 cores (README)

# Parameter counts (billions) of the base models the product names; others are read from
# a "<N>B" in the name.
MODEL_SIZES_B = {
    "embedded": 0.135,
    "HuggingFaceTB/SmolLM2-135M-Instruct": 0.135,
    "meta-llama/Meta-Llama-3-70B-Instruct": 70.6,
    "meta-llama/Llama-3.1-70B-Instruct": 70.6,
    "meta-llama/Llama-3.3-70B-Instruct": 70.6,
    "meta-llama/Meta-Llama-3-8B-Instruct": 8.03,
    "meta-llama/Llama-3.1-8B-Instruct": 8.03,
}
DEFAULT_SIZE_B = 8.0

PROVISIONING_MINUTES = 2.0
LOAD_GB_PER_S = 0.5
QLORA_SLOWDOWN = 0.6
SPOT_REWORK = 0.10
EVAL_SPEEDUP = 3.0
ACCURACY = 0.15


def gpu_catalog(overrides: dict | None = None) -> dict[str, GPU]:
    """The catalogue with prices overridden, e.g. ``{"H100_PCIE": {"spot_per_hour": 2.2}}``."""
    catalog = dict(GPU_CATALOG)
    for gpu_type, fields in (overrides or {}).items():
        base = catalog.get(gpu_type) or GPU(gpu_type, gpu_type, 80, 0.0, 0.0, 300.0)
        catalog[gpu_type] = replace(base, **fields)
    return catalog


def model_size_b(base_model: str) -> tuple[float, bool]:
    """Billions of parameters, and whether the figure is known rather than assumed.

    >>> model_size_b("meta-llama/Meta-Llama-3-70B-Instruct")
    (70.6, True)
    >>> model_size_b("mistralai/Mistral-7B-Instruct-v0.3")
    (7.0, True)
    >>> model_size_b("some/model")
    (8.0, False)
    """
    if base_model in MODEL_SIZES_B:
        return MODEL_SIZES_B[base_model], True
    m = re.search(r"(\d+(?:\.\d+)?)\s*[bB](?![a-zA-Z])", base_model.rsplit("/", 1)[-1])
    if m:
        return float(m.group(1)), True
    return DEFAULT_SIZE_B, False


def tokens_per_second(gpu: GPU, size_b: float, method: str) -> float:
    """Sustained training tokens a second.

    >>> round(tokens_per_second(GPU_CATALOG["H100_PCIE"], 70.6, "qlora"))
    562
    >>> round(tokens_per_second(GPU_CATALOG["H100_PCIE"], 8.03, "lora"))
    8238
    """
    if gpu.type == "LOCAL_CPU":
        return LOCAL_CPU_TOKENS_PER_SECOND * 0.135 / max(size_b, 0.135)
    tps = gpu.mfu * gpu.bf16_tflops * 1e12 / (4 * size_b * 1e9)
    return tps * (QLORA_SLOWDOWN if method == "qlora" else 1.0)


def memory_needed_gb(size_b: float, method: str, lora_r: int = 16) -> float:
    """Rough GPU memory for weights plus a margin for activations and adapter state.

    >>> memory_needed_gb(70.6, "qlora")
    47.8
    >>> memory_needed_gb(70.6, "lora")
    155.3
    """
    weights = size_b * (0.55 if method == "qlora" else 2.0)
    return round(weights * 1.05 + 6.0 + lora_r / 16, 1)


@dataclass(frozen=True)
class Estimate:
    gpu_type: str
    pricing: str
    price_per_hour: float
    base_model_params_b: float
    tokens_per_epoch: int
    training_tokens: int
    evaluation_tokens: int
    tokens_per_second: float
    duration_minutes: float
    cost_usd: float
    cost_low_usd: float
    cost_high_usd: float
    notes: list[str]

    def to_dict(self) -> dict:
        return asdict(self)


def estimate(*, tokens: int, trainable_pairs: int, num_epochs: int, targets_per_step: int,
             base_model: str, method: str, gpu_type: str = DEFAULT_GPU, pricing: str = "spot",
             validation_fraction: float = 0.2, max_steps: int | None = None,
             lora_r: int = 16, catalog: dict[str, GPU] | None = None) -> Estimate:
    """Estimate duration and cost from the dataset's token count and the job's settings.

    >>> e = estimate(tokens=1_000_000, trainable_pairs=2000, num_epochs=3, targets_per_step=16,
    ...              base_model="meta-llama/Meta-Llama-3-70B-Instruct", method="qlora")
    >>> e.training_tokens, round(e.duration_minutes), e.cost_usd
    (2400000, 86, 3.58)
    """
    catalog = catalog or GPU_CATALOG
    problems = []
    if gpu_type not in catalog:
        problems.append(Problem("gpu.type", f"unknown GPU type {gpu_type!r}: expected one of "
                                + ", ".join(catalog)))
    if pricing not in PRICING_TIERS:
        problems.append(Problem("gpu.pricing", f"unknown pricing {pricing!r}: expected spot or on_demand"))
    if problems:
        raise ConfigError(problems)
    gpu = catalog[gpu_type]
    size_b, known = model_size_b(base_model)
    notes = [] if known else [f"size of {base_model!r} unknown: assumed {DEFAULT_SIZE_B:g}B parameters"]
    if gpu.memory_gb and memory_needed_gb(size_b, method, lora_r) > gpu.memory_gb:
        notes.append(f"{method} on a {size_b:g}B model needs about "
                     f"{memory_needed_gb(size_b, method, lora_r):g} GB; the {gpu.name} has "
                     f"{gpu.memory_gb} GB (use qlora or a larger GPU)")

    train_fraction = 1.0 - validation_fraction
    per_epoch = int(tokens * train_fraction)
    epochs = float(num_epochs)
    if max_steps:
        steps_per_epoch = max(1, math.ceil(trainable_pairs * train_fraction / targets_per_step))
        epochs = min(epochs, max_steps / steps_per_epoch)
    training_tokens = int(per_epoch * epochs)
    eval_tokens = int(tokens * validation_fraction) * 2
    tps = tokens_per_second(gpu, size_b, method)
    seconds = training_tokens / tps + eval_tokens / (tps * EVAL_SPEEDUP)
    overhead_min = PROVISIONING_MINUTES + size_b * (0.55 if method == "qlora" else 2.0) / LOAD_GB_PER_S / 60
    minutes = seconds / 60 + overhead_min
    if pricing == "spot":
        minutes *= 1 + SPOT_REWORK
    price = gpu.price(pricing)
    cost = round(minutes / 60 * price, 2)
    return Estimate(gpu_type, pricing, price, size_b, per_epoch, training_tokens, eval_tokens,
                    round(tps, 1), round(minutes, 1), cost,
                    round(cost * (1 - ACCURACY), 2), round(cost * (1 + ACCURACY), 2), notes)


def cost_so_far(running_seconds: float, price_per_hour: float) -> float:
    """What the GPU time used so far costs.

    >>> cost_so_far(1800, 2.49)
    1.245
    """
    return round(running_seconds / 3600 * price_per_hour, 4)


def billed_seconds(execution_ms: int | None, running_seconds: float) -> float:
    """The GPU time an attempt is billed for: RunPod's ``executionTime`` once its status
    gives it (``delayTime``, the wait in the queue for a worker, is not billed), else the
    time it has been running by our clock.

    >>> billed_seconds(90_500, 95.0), billed_seconds(None, 95.0)
    (90.5, 95.0)
    """
    return execution_ms / 1000 if execution_ms is not None else running_seconds


def projected_cost(*, cost_so_far: float, step: int | None, total_steps: int | None,
                   training_seconds: float | None, price_per_hour: float,
                   evaluation_seconds: float = 0.0) -> float | None:
    """The final cost a running job heads for: what it has cost, plus the steps left at the
    measured time a step (its training seconds over the steps done), plus the evaluation.
    None until a step has been measured.

    >>> projected_cost(cost_so_far=1.0, step=25, total_steps=100, training_seconds=500,
    ...                price_per_hour=7.99, evaluation_seconds=120)
    4.5955
    >>> projected_cost(cost_so_far=0.2, step=0, total_steps=100, training_seconds=0, price_per_hour=7.99) is None
    True
    """
    if not step or not total_steps or not training_seconds:
        return None
    left_s = max(0, total_steps - step) * training_seconds / step + evaluation_seconds
    return round(cost_so_far + left_s / 3600 * price_per_hour, 4)


def within_accuracy(actual: float, estimate: float | None) -> bool | None:
    """Whether a finished job's actual cost is within ±15% of its estimate (the documents'
    target: 90% of jobs are). None when there was no estimate to compare with.

    >>> within_accuracy(1.10, 1.0), within_accuracy(1.20, 1.0), within_accuracy(0.0, 0.0)
    (True, False, True)
    """
    if estimate is None:
        return None
    if estimate == 0:
        return actual == 0
    return abs(actual - estimate) / estimate <= ACCURACY + 1e-9
